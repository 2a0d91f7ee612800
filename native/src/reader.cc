// PipeReader: reads a decompressor's output pipe in large chunks on a libuv
// pool thread and digests every byte read there, so the main thread gets a
// few big buffers instead of many 64 KiB ones and never hashes.
//
//   pipe()                     -> [readFd, writeFd], both O_CLOEXEC, blocking;
//                                 the pipe is grown to 1 MiB (best effort)
//   new PipeReader(fd, alg?)   takes ownership of fd; alg: an OpenSSL digest
//                                 name ("sha256", "sha512", ...) or none
//   reader.read(buf)           -> Promise<number>: fills buf (a Buffer) until
//                                 full or end of input; 0 = end of input.
//                                 One read at a time; buf must not be touched
//                                 until the promise settles.
//   reader.digest()            -> hex digest of every byte read so far
//   reader.close()             closes fd (not while a read is running)
//
// The digest uses the OpenSSL built into Node (its symbols are exported by the
// node binary; the headers ship with Node's development headers).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>

#include "common.h"

namespace distnative {

namespace {

class PipeReader;

class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, PipeReader* r, Napi::Buffer<uint8_t> buf);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  Napi::Promise Promise() { return deferred_.Promise(); }

 private:
  PipeReader* r_;
  Napi::ObjectReference self_;
  Napi::ObjectReference buf_;
  uint8_t* data_;
  size_t cap_;
  size_t got_ = 0;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

class PipeReader : public Napi::ObjectWrap<PipeReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PipeReader",
                       {InstanceMethod<&PipeReader::Read>("read"), InstanceMethod<&PipeReader::Digest>("digest"),
                        InstanceMethod<&PipeReader::CloseJs>("close")});
  }

  explicit PipeReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PipeReader>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
    fd_ = info[0].As<Napi::Number>().Int32Value();
    if (info.Length() > 1 && info[1].IsString()) {
      std::string alg = info[1].As<Napi::String>().Utf8Value();
      const EVP_MD* md = EVP_get_digestbyname(alg.c_str());
      if (!md) throw Napi::TypeError::New(env, "unknown digest algorithm " + alg);
      ctx_ = EVP_MD_CTX_new();
      if (!ctx_ || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) throw Napi::Error::New(env, "digest init failed");
    }
  }

  ~PipeReader() override {
    if (fd_ >= 0) ::close(fd_);
    if (ctx_) EVP_MD_CTX_free(ctx_);
  }

  // Worker thread: read until full or EOF.
  int Fill(uint8_t* data, size_t cap, size_t* got) {
    size_t n = 0;
    while (n < cap) {
      ssize_t r = ::read(fd_, data + n, cap - n);
      if (r == 0) break;
      if (r < 0) {
        if (errno == EINTR) continue;
        *got = n;
        return errno;
      }
      n += static_cast<size_t>(r);
    }
    if (ctx_ && n > 0 && EVP_DigestUpdate(ctx_, data, n) != 1) {
      *got = n;
      return EIO;
    }
    *got = n;
    return 0;
  }

  bool busy_ = false;

 private:
  int fd_ = -1;
  EVP_MD_CTX* ctx_ = nullptr;

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "read: a Buffer is required");
    if (busy_) throw Napi::Error::New(env, "read: a read is already running");
    if (fd_ < 0) throw Napi::Error::New(env, "read: closed");
    busy_ = true;
    auto* w = new ReadWorker(env, this, info[0].As<Napi::Buffer<uint8_t>>());
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw Napi::Error::New(env, "digest: no algorithm was given");
    if (busy_) throw Napi::Error::New(env, "digest: a read is running");
    EVP_MD_CTX* copy = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    bool ok = copy && EVP_MD_CTX_copy_ex(copy, ctx_) == 1 && EVP_DigestFinal_ex(copy, md, &len) == 1;
    if (copy) EVP_MD_CTX_free(copy);
    if (!ok) throw Napi::Error::New(env, "digest failed");
    std::string hex(len * 2, '0');
    static const char* digits = "0123456789abcdef";
    for (unsigned int i = 0; i < len; i++) {
      hex[2 * i] = digits[md[i] >> 4];
      hex[2 * i + 1] = digits[md[i] & 15];
    }
    return Napi::String::New(env, hex);
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    if (busy_) throw Napi::Error::New(info.Env(), "close: a read is running");
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return info.Env().Undefined();
  }
};

ReadWorker::ReadWorker(Napi::Env env, PipeReader* r, Napi::Buffer<uint8_t> buf)
    : Napi::AsyncWorker(env, "dist:PipeReader.read"),
      r_(r),
      self_(Napi::Persistent(r->Value())),
      buf_(Napi::Persistent(buf.As<Napi::Object>())),
      data_(buf.Data()),
      cap_(buf.Length()),
      deferred_(Napi::Promise::Deferred::New(env)) {}

void ReadWorker::Execute() { err_ = r_->Fill(data_, cap_, &got_); }

void ReadWorker::OnOK() {
  r_->busy_ = false;
  if (err_) {
    deferred_.Reject(ErrnoError(Env(), err_, "read").Value());
    return;
  }
  deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(got_)));
}

void ReadWorker::OnError(const Napi::Error& e) {
  r_->busy_ = false;
  deferred_.Reject(e.Value());
}

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw ErrnoError(env, errno, "pipe2");
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // best effort (pipe-max-size)
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, fds[0]));
  a.Set(1u, Napi::Number::New(env, fds[1]));
  return a;
}

}  // namespace

void InitReader(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("PipeReader", PipeReader::Define(env));
}

}  // namespace distnative
