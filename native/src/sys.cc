// dist_native: the few Linux syscalls Node has no binding for.
//
//   mknod(path, mode, dev)                      sync
//   lsetxattr(path, name, value, flags)         sync (never follows a final symlink)
//   lgetxattr(path, name) -> Buffer | null      sync (null when the attribute is absent)
//   llistxattr(path) -> string[]                sync
//   mount(source, target, fstype, flags, data)  Promise (runs on the libuv pool)
//   umount2(target, flags)                      Promise
//   ApplySession                                see apply.cc
//
// Errors are Node-style: err.code ("ENOENT"), err.errno (negative), err.syscall, err.path.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <vector>

#include "common.h"

namespace distnative {

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR)
    E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK)
    E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOPNOTSUPP)
    E(EOVERFLOW) E(EDQUOT) E(ESTALE) E(ECANCELED)
#undef E
    default:
      return nullptr;
  }
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                       const std::string& dest) {
  const char* name = ErrnoName(err);
  std::string code = name ? name : ("E" + std::to_string(err));
  std::string desc = std::strerror(err);
  if (!desc.empty() && desc[0] >= 'A' && desc[0] <= 'Z') desc[0] = static_cast<char>(desc[0] - 'A' + 'a');
  std::string msg = code + ": " + desc + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  if (!dest.empty()) msg += " -> '" + dest + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  if (!dest.empty()) e.Set("dest", Napi::String::New(env, dest));
  return e;
}

std::string PathValue(Napi::Value v, const char* what) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string or a Buffer");
}

Napi::Error Failure::ToError(Napi::Env env) const {
  Napi::Error e = err ? ErrnoError(env, err, syscall, path, dest) : Napi::Error::New(env, message);
  if (index >= 0) e.Set("opIndex", Napi::Number::New(env, static_cast<double>(index)));
  return e;
}

void InitApply(Napi::Env env, Napi::Object exports);
void InitReader(Napi::Env env, Napi::Object exports);

namespace {

// Strings are UTF-8; Buffers are taken as raw bytes (paths that are not UTF-8).
std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string or a Buffer");
  return PathValue(info[i], what);
}

// Optional string: null/undefined -> empty + absent flag.
bool OptStringArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return false;
  *out = PathValue(info[i], "argument");
  return true;
}

double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* what, double def = 0, bool optional = false) {
  if (info.Length() <= i || info[i].IsUndefined()) {
    if (optional) return def;
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  }
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

Napi::Value Mknod(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  auto mode = static_cast<mode_t>(NumberArg(info, 1, "mode"));
  auto dev = static_cast<dev_t>(NumberArg(info, 2, "dev"));
  if (::mknod(path.c_str(), mode, dev) != 0) throw ErrnoError(info.Env(), errno, "mknod", path);
  return info.Env().Undefined();
}

Napi::Value Makedev(const Napi::CallbackInfo& info) {
  auto major = static_cast<unsigned>(NumberArg(info, 0, "major"));
  auto minor = static_cast<unsigned>(NumberArg(info, 1, "minor"));
  return Napi::Number::New(info.Env(), static_cast<double>(makedev(major, minor)));
}

Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  std::string name = StringArg(info, 1, "name");
  std::string sval;
  const void* data;
  size_t len;
  if (info.Length() > 2 && info[2].IsTypedArray()) {
    auto b = info[2].As<Napi::Uint8Array>();
    data = b.Data();
    len = b.ByteLength();
  } else if (info.Length() > 2 && info[2].IsString()) {
    sval = info[2].As<Napi::String>().Utf8Value();
    data = sval.data();
    len = sval.size();
  } else {
    throw Napi::TypeError::New(info.Env(), "value must be a Buffer or a string");
  }
  int flags = static_cast<int>(NumberArg(info, 3, "flags", 0, true));
  if (::lsetxattr(path.c_str(), name.c_str(), data, len, flags) != 0) {
    throw ErrnoError(info.Env(), errno, "lsetxattr", path);
  }
  return info.Env().Undefined();
}

Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  std::string name = StringArg(info, 1, "name");
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) return Napi::Buffer<char>::Copy(info.Env(), buf.data(), static_cast<size_t>(n));
    if (errno == ENODATA) return info.Env().Null();
    if (errno != ERANGE) throw ErrnoError(info.Env(), errno, "lgetxattr", path);
    ssize_t need = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (need < 0) throw ErrnoError(info.Env(), errno, "lgetxattr", path);
    buf.resize(static_cast<size_t>(need) + 1);
  }
}

Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  std::vector<char> buf(1024);
  ssize_t n;
  for (;;) {
    n = ::llistxattr(path.c_str(), buf.data(), buf.size());
    if (n >= 0) break;
    if (errno != ERANGE) throw ErrnoError(info.Env(), errno, "llistxattr", path);
    ssize_t need = ::llistxattr(path.c_str(), nullptr, 0);
    if (need < 0) throw ErrnoError(info.Env(), errno, "llistxattr", path);
    buf.resize(static_cast<size_t>(need) + 1);
  }
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t k = 0;
  for (ssize_t i = 0; i < n;) {
    size_t l = strnlen(buf.data() + i, static_cast<size_t>(n - i));
    if (l > 0) out.Set(k++, Napi::String::New(info.Env(), buf.data() + i, l));
    i += static_cast<ssize_t>(l) + 1;
  }
  return out;
}

// Runs fn on the libuv pool and settles a Promise with its Failure.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void(Failure&)> fn)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fn_(std::move(fn)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { fn_(failure_); }
  void OnOK() override {
    if (failure_.ok()) {
      deferred_.Resolve(Env().Undefined());
    } else {
      deferred_.Reject(failure_.ToError(Env()).Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void(Failure&)> fn_;
  Failure failure_;
};

Napi::Value Mount(const Napi::CallbackInfo& info) {
  std::string source, target, fstype, data;
  bool hasSource = OptStringArg(info, 0, &source);
  target = StringArg(info, 1, "target");
  bool hasType = OptStringArg(info, 2, &fstype);
  auto flags = static_cast<unsigned long>(NumberArg(info, 3, "flags", 0, true));
  bool hasData = OptStringArg(info, 4, &data);
  auto* w = new PromiseWorker(info.Env(), [=](Failure& f) {
    if (::mount(hasSource ? source.c_str() : nullptr, target.c_str(), hasType ? fstype.c_str() : nullptr, flags,
                hasData ? data.c_str() : nullptr) != 0) {
      f.set(errno, "mount", target);
    }
  });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Umount2(const Napi::CallbackInfo& info) {
  std::string target = StringArg(info, 0, "target");
  int flags = static_cast<int>(NumberArg(info, 1, "flags", 0, true));
  auto* w = new PromiseWorker(info.Env(), [=](Failure& f) {
    if (::umount2(target.c_str(), flags) != 0) f.set(errno, "umount2", target);
  });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// realtimeNs() -> bigint: CLOCK_REALTIME in ns, what Go's time.Now() reads
// (clients compare our timestamps with theirs at ns precision; Node only has
// the ms Date.now() and a monotonic clock that drifts from it under NTP).
Napi::Value RealtimeNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

// startWriteback(fd, offset, length) -> Promise<void>: sync_file_range with
// SYNC_FILE_RANGE_WRITE on the libuv pool: the kernel starts writing those
// dirty pages out (not waiting for the I/O), so a later fsync has less left
// to wait for. The caller keeps fd open until the promise settles. Errors are
// ignored: it is advice, and the fsync that follows reports real ones.
Napi::Value StartWriteback(const Napi::CallbackInfo& info) {
  const int fd = static_cast<int>(NumberArg(info, 0, "fd", 0, true));
  const auto off = static_cast<off64_t>(NumberArg(info, 1, "offset", 0, true));
  const auto len = static_cast<off64_t>(NumberArg(info, 2, "length", 0, true));
  auto* w = new PromiseWorker(info.Env(), [=](Failure&) { ::sync_file_range(fd, off, len, SYNC_FILE_RANGE_WRITE); });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("makedev", Napi::Function::New(env, Makedev, "makedev"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr, "llistxattr"));
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("realtimeNs", Napi::Function::New(env, RealtimeNs, "realtimeNs"));
  exports.Set("startWriteback", Napi::Function::New(env, StartWriteback, "startWriteback"));
  InitApply(env, exports);
  InitReader(env, exports);
  return exports;
}

}  // namespace distnative

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return distnative::Init(env, exports); }

NODE_API_MODULE(dist_native, InitModule)
