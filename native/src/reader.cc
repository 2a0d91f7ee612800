// PipeReader: reads a decompressor's output pipe in large chunks on a thread
// of its own and digests every byte read there, so the main thread gets a
// few big buffers instead of many 64 KiB ones and never hashes.
//
//   pipe()                     -> [readFd, writeFd], both O_CLOEXEC, blocking;
//                                 the pipe is grown to 1 MiB (best effort)
//   new PipeReader(fd, alg?)   takes ownership of fd; alg: an OpenSSL digest
//                                 name ("sha256", "sha512", ...) or none
//   reader.read(buf)           -> Promise<number>: fills buf (a Buffer) until
//                                 full or end of input; 0 = end of input.
//                                 Reads may be queued ahead (each with its own
//                                 buffer): the thread fills them in call order
//                                 without waiting for the caller, and they
//                                 settle in that order. A buffer must not be
//                                 touched until its promise settles.
//   reader.digest()            -> hex digest of every byte read so far (no
//                                 read queued)
//   reader.close()             closes fd (no read queued)
//
// The digest uses the OpenSSL built into Node (its symbols are exported by the
// node binary; the headers ship with Node's development headers).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "common.h"

namespace distnative {

namespace {

// One reader thread per PipeReader (started by the first read): a read blocks
// until the writer writes or closes, which must not hold a libuv pool thread
// the file system work of the same process is queued behind.
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
    Stop(queued_ == 0);  // idle: the thread waits on cv_ and ends at once
    if (fd_ >= 0) ::close(fd_);
    if (ctx_) EVP_MD_CTX_free(ctx_);
  }

 private:
  int fd_ = -1;
  EVP_MD_CTX* ctx_ = nullptr;
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false, stop_ = false;
  // A queued read. The thread owns it from todo_ until it hands it back
  // through the TSFN; the main thread settles and frees it.
  struct Req {
    uint8_t* data;
    size_t cap, got = 0;
    int err = 0;
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference buf;
  };
  std::deque<Req*> todo_;  // guarded by mu_
  size_t queued_ = 0;      // main thread: reads not settled yet
  Napi::ThreadSafeFunction tsfn_;

  // Reader thread: read until full or EOF, digest what was read.
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
    *got = n;
    if (ctx_ && n > 0 && EVP_DigestUpdate(ctx_, data, n) != 1) return EIO;
    return 0;
  }

  void Loop() {
    for (;;) {
      Req* r;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !todo_.empty(); });
        if (stop_) return;
        r = todo_.front();
        todo_.pop_front();
      }
      r->err = Fill(r->data, r->cap, &r->got);
      // in order: one producer, and the TSFN queue is FIFO
      tsfn_.BlockingCall(r, [this](Napi::Env env, Napi::Function, Req* done) { Complete(env, done); });
    }
  }

  // Main thread: settle a read's promise.
  void Complete(Napi::Env env, Req* r) {
    std::unique_ptr<Req> own(r);
    if (--queued_ == 0) tsfn_.Unref(env);
    r->buf.Reset();
    if (r->err) r->deferred.Reject(ErrnoError(env, r->err, "read").Value());
    else r->deferred.Resolve(Napi::Number::New(env, static_cast<double>(r->got)));
  }

  void Stop(bool join) {
    if (!started_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (join) {
      th_.join();
    } else {
      th_.detach();  // blocked in read(): never wait for it here
    }
    tsfn_.Release();
    started_ = false;
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "read: a Buffer is required");
    if (fd_ < 0) throw Napi::Error::New(env, "read: closed");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (!started_) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "dist:PipeReader", 0, 1);
      started_ = true;
      th_ = std::thread([this] { Loop(); });
    }
    if (queued_++ == 0) tsfn_.Ref(env);  // a queued read keeps the loop alive; an idle reader does not
    auto* r = new Req{buf.Data(), buf.Length(), 0, 0, Napi::Promise::Deferred::New(env), Napi::Persistent(buf.As<Napi::Object>())};
    Napi::Promise p = r->deferred.Promise();
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo_.push_back(r);
    }
    cv_.notify_one();
    return p;
  }

  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw Napi::Error::New(env, "digest: no algorithm was given");
    if (queued_) throw Napi::Error::New(env, "digest: a read is queued");
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
    if (queued_) throw Napi::Error::New(info.Env(), "close: a read is queued");
    Stop(true);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return info.Env().Undefined();
  }
};

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
