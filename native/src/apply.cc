// ApplySession: executes the filesystem operations planned by
// src/archive/apply.ts, in order, on a libuv pool thread.
//
// Contract with the planner:
//  - Every op path `p` is relative to the session root, clean ("a/b/c", no
//    "." or ".." components, no leading slash) and its parent directories
//    are real directories (the planner resolved symlinks like containerd's
//    fs.RootPath). The session re-checks that: parents are opened with
//    openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a planner mistake
//    fails the op (ELOOP/EXDEV) instead of writing outside the root.
//  - The final component is never followed: files are created with
//    O_CREAT|O_EXCL|O_NOFOLLOW, metadata uses fchown/fchmod/futimens on an
//    fd or the *at(AT_SYMLINK_NOFOLLOW) calls; chmod skips symlinks.
//  - Creating over an existing entry removes it first (recursively), except
//    a directory over a directory, which is kept and gets the new metadata.
//  - Ops run strictly in order; run() must not be called again before the
//    previous promise settles. After a failure the session refuses more work.
//
// Op fields (all optional unless noted; packed into one buffer per batch, see
// run() below). Paths (p, tg, src) are bytes, so names that are not UTF-8
// survive; xattr names are UTF-8.
//
//   t   op type (required, see OpType)   p  path (rel)    tg  link/symlink target
//   d   Buffer[] data to append (FILE)   c  close the current file (FILE)
//   u,g owner (chown when both present)  md permission bits (chmod when present)
//   ts  [atimeSec, atimeNsec, mtimeSec, mtimeNsec]
//   x   [name, Buffer, name, Buffer...]  extended attributes
//   mode,dev  for MKNOD                  src  absolute source path (COPYUP, MKPARENT xattrs)
//   xn,xv  SETXATTR name/value           q  TIMES: ignore a missing path;
//                                        MKPARENT: an existing directory gets the metadata
//   ts[3] (mtime nsec) may be UTIME_OMIT: the mtime is kept
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace distnative {

namespace {

enum OpType {
  OP_FILE = 1,
  OP_MKDIR = 2,
  OP_MKPARENT = 3,
  OP_SYMLINK = 4,
  OP_LINK = 5,
  OP_MKNOD = 6,
  OP_RMALL = 7,
  OP_WHITEOUT = 8,
  OP_SETXATTR = 9,
  OP_TIMES = 10,
  OP_COPYUP = 11,
};

struct Op {
  int type = 0;
  std::string p, tg, src;
  std::vector<iovec> data;
  bool close = false, quiet = false;
  bool chown = false;
  uid_t uid = 0;
  gid_t gid = 0;
  int perm = -1;
  bool times = false;
  timespec ts[2] = {};
  std::vector<std::pair<std::string, std::string>> xattrs;
  mode_t mode = 0;
  dev_t dev = 0;
  std::string xn, xv;
};

struct Batch {
  std::vector<Op> ops;
  // what run() was given: decoded into ops on the pool thread (Decode)
  const uint8_t* packed = nullptr;
  size_t packedLen = 0;
  std::vector<iovec> data;
};

inline void Close(int fd) {
  if (fd >= 0) ::close(fd);
}

std::string Dirname(const std::string& rel, std::string* base) {
  size_t i = rel.rfind('/');
  if (i == std::string::npos) {
    *base = rel;
    return "";
  }
  *base = rel.substr(i + 1);
  return rel.substr(0, i);
}

bool ValidRel(const std::string& rel) {
  if (rel.empty()) return true;
  if (rel[0] == '/' || rel.back() == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string c = rel.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return false;
    start = end + 1;
  }
  return true;
}

// Removes dfd/name recursively without following symlinks. Missing is fine.
int RemoveAt(int dfd, const char* name, bool* removedDir) {
  if (::unlinkat(dfd, name, 0) == 0) return 0;
  int e = errno;
  if (e == ENOENT) return 0;
  if (e != EISDIR && e != EPERM) return e;
  int sub = ::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sub < 0) {
    if (errno == ENOENT) return 0;
    return errno == ENOTDIR ? e : errno;
  }
  DIR* d = ::fdopendir(sub);
  if (!d) {
    int e2 = errno;
    Close(sub);
    return e2;
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* ent = ::readdir(d)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  int rerr = errno;
  if (rerr) {
    ::closedir(d);
    return rerr;
  }
  int r = 0;
  for (const auto& n : names) {
    r = RemoveAt(::dirfd(d), n.c_str(), removedDir);
    if (r) break;
  }
  ::closedir(d);
  if (r) return r;
  if (::unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) return errno;
  *removedDir = true;
  return 0;
}

// An open directory fd shared by the dispatcher's cache and the file tasks using it.
struct DirRef {
  int fd;
  explicit DirRef(int f) : fd(f) {}
  ~DirRef() { Close(fd); }
  DirRef(const DirRef&) = delete;
  DirRef& operator=(const DirRef&) = delete;
};
using DirPtr = std::shared_ptr<DirRef>;

bool IsAncestor(const std::string& a, const std::string& b) {
  return b.size() > a.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '/';
}

bool IgnorableXattrError(int err, const std::string& name, bool regularOrDir) {
  // containerd: ENOTSUP is ignored; EPERM on user.* for non-regular, non-dir files too.
  if (err == ENOTSUP) return true;
  if (err == EPERM && name.rfind("user.", 0) == 0 && !regularOrDir) return true;
  return false;
}

class ApplySession : public Napi::ObjectWrap<ApplySession> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ApplySession",
                       {InstanceMethod<&ApplySession::Run>("run"), InstanceMethod<&ApplySession::CloseJs>("close")});
  }

  // new ApplySession(root[, threads]): threads > 1 writes self-contained
  // regular files on that many pool threads (see Execute).
  explicit ApplySession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ApplySession>(info) {
    if (info.Length() < 1) throw Napi::TypeError::New(info.Env(), "root must be a string or a Buffer");
    root_ = PathValue(info[0], "root");
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
    if (info.Length() > 1 && info[1].IsNumber()) threads_ = std::clamp(info[1].As<Napi::Number>().Int32Value(), 1, 64);
    rootfd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd_ < 0) throw ErrnoError(info.Env(), errno, "open", root_);
  }

  ~ApplySession() override { CloseAll(); }

  // Runs on a libuv pool thread (the dispatcher). Ops are applied in order;
  // with a pool, a regular file written by a single op (open+data+close) is
  // handed to a pool thread unless a path in flight is the same, an ancestor
  // or a descendant; every other op waits for the files in flight first
  // (directories only when in conflict), so the result is the same as
  // sequential execution.
  void Execute(Batch& b, Failure& f) {
    for (size_t i = 0; i < b.ops.size(); i++) {
      Op& op = b.ops[i];
      if (pool_failed_.load()) break;
      bool parallel = threads_ > 1 && op.type == OP_FILE && !op.p.empty() && op.close && curfd_ < 0;
      bool dirop = op.type == OP_MKDIR || op.type == OP_MKPARENT;
      if (parallel || dirop) {
        if (Conflicts(op.p)) WaitPool();
      } else {
        WaitPool();
      }
      if (pool_failed_.load()) break;
      if (parallel) {
        std::string base;
        Failure pf;
        DirPtr d = ParentRef(op.p, &base, pf);
        if (!d) {
          f = pf;
          f.index = static_cast<long>(i);
          break;
        }
        Submit(&op, i, std::move(d), std::move(base));
        continue;
      }
      if (!Exec(op, f)) {
        f.index = static_cast<long>(i);
        break;
      }
    }
    WaitPool();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pool_failed_.load() && (f.ok() || poolFailure_.index < f.index)) f = poolFailure_;
    }
    if (!f.ok()) {
      failed_ = true;
      Close(curfd_);
      curfd_ = -1;
    }
  }

  bool busy_ = false;
  bool failed_ = false;

 private:
  std::string root_;
  int rootfd_ = -1;
  int curfd_ = -1;  // the regular file being written
  std::string curpath_;
  std::string cacheRel_;
  DirPtr cache_;
  std::atomic<int> cachefd_{-1};  // cache_->fd, or -1
  // set by pool threads when they removed a directory: the cache may be stale
  std::atomic<bool> cacheDirty_{false};

  // file pool
  struct Task {
    Op* op;
    size_t index;
    DirPtr dir;
    std::string base;
  };
  int threads_ = 1;
  std::vector<std::thread> pool_;
  std::mutex mu_;
  std::condition_variable work_cv_, idle_cv_;
  std::deque<Task> queue_;
  std::vector<std::string> inflight_;  // paths queued or running
  bool stop_ = false;
  std::atomic<bool> pool_failed_{false};
  Failure poolFailure_;

  bool Conflicts(const std::string& p) {
    if (pool_.empty()) return false;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& q : inflight_) {
      if (q == p || IsAncestor(q, p) || IsAncestor(p, q)) return true;
    }
    return false;
  }

  void WaitPool() {
    if (pool_.empty()) return;
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return inflight_.empty(); });
  }

  void Submit(Op* op, size_t index, DirPtr dir, std::string base) {
    if (pool_.empty()) {
      for (int i = 0; i < threads_; i++) pool_.emplace_back([this] { Loop(); });
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_.push_back(op->p);
      queue_.push_back(Task{op, index, std::move(dir), std::move(base)});
    }
    work_cv_.notify_one();
  }

  void Loop() {
    for (;;) {
      Task t;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        t = std::move(queue_.front());
        queue_.pop_front();
      }
      Failure f;
      bool ok = pool_failed_.load() || WriteFileTask(*t.op, t.dir->fd, t.base, f);
      t.dir.reset();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!ok && (!pool_failed_.load() || static_cast<long>(t.index) < poolFailure_.index)) {
          poolFailure_ = f;
          poolFailure_.index = static_cast<long>(t.index);
          pool_failed_.store(true);
        }
        auto it = std::find(inflight_.begin(), inflight_.end(), t.op->p);
        if (it != inflight_.end()) inflight_.erase(it);
        if (inflight_.empty()) idle_cv_.notify_all();
      }
    }
  }

  void StopPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : pool_) t.join();
    pool_.clear();
  }

  // A whole regular file in one op: create (replacing), write, metadata, close.
  bool WriteFileTask(const Op& op, int dfd, const std::string& base, Failure& f) {
    std::string path = Full(op.p);
    int fd = CreateFile(dfd, base, path, f);
    if (fd < 0) return false;
    if (!op.data.empty() && !WriteFd(fd, op.data, path, f)) {
      ::close(fd);
      return false;
    }
    return FinishFile(op, fd, path, f);
  }

  // A regular file created empty for writing (replacing what is there): its fd, or -1 with f set.
  int CreateFile(int dfd, const std::string& base, const std::string& path, Failure& f) {
    int fd = -1;
    auto create = [&]() {
      fd = ::openat(dfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      return fd < 0 ? -1 : 0;
    };
    return CreateReplacing(dfd, base, path, "open", create, f) ? fd : -1;
  }

  // A written file's metadata, then close (fd is closed either way).
  bool FinishFile(const Op& op, int fd, const std::string& path, Failure& f) {
    bool ok = FdMeta(op, fd, path, f);
    if (::close(fd) != 0 && ok) {
      f.set(errno, "close", path);
      ok = false;
    }
    return ok;
  }

  void CloseAll() {
    StopPool();
    Close(curfd_);
    curfd_ = -1;
    DropCache();
    Close(rootfd_);
    rootfd_ = -1;
  }

  void DropCache() {
    cache_.reset();
    cachefd_ = -1;
    cacheRel_.clear();
  }

  std::string Full(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  // Opens rel (a directory beneath root, no symlinks allowed) as O_PATH.
  int OpenBeneath(const std::string& rel, Failure& f) {
    if (!ValidRel(rel)) {
      f.set(EINVAL, "openat2", Full(rel));
      return -1;
    }
    if (rel.empty()) return ::dup(rootfd_);
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    for (int attempt = 0; attempt < 8; attempt++) {
      long fd = ::syscall(SYS_openat2, rootfd_, rel.c_str(), &how, sizeof how);
      if (fd >= 0) return static_cast<int>(fd);
      if (errno == EAGAIN) continue;
      if (errno != ENOSYS && errno != EPERM) {
        f.set(errno, "openat2", Full(rel));
        return -1;
      }
      break;  // no openat2 (or blocked by seccomp): walk component by component
    }
    int cur = ::dup(rootfd_);
    size_t start = 0;
    while (cur >= 0 && start < rel.size()) {
      size_t end = rel.find('/', start);
      if (end == std::string::npos) end = rel.size();
      std::string c = rel.substr(start, end - start);
      int next = ::openat(cur, c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int e = errno;
      Close(cur);
      if (next < 0) {
        f.set(e == ELOOP ? ELOOP : e, "openat", Full(rel.substr(0, end)));
        return -1;
      }
      cur = next;
      start = end + 1;
    }
    return cur;
  }

  // Parent directory of rel, as a shared reference (dispatcher thread only).
  DirPtr ParentRef(const std::string& rel, std::string* base, Failure& f) {
    if (rel.empty()) {
      f.set(EINVAL, "resolve", root_);
      return nullptr;
    }
    if (cacheDirty_.exchange(false)) DropCache();
    std::string dir = Dirname(rel, base);
    if (cache_ && dir == cacheRel_) return cache_;
    int fd = dir.empty() ? ::dup(rootfd_) : OpenBeneath(dir, f);
    if (fd < 0) {
      if (f.ok()) f.set(errno, "dup", root_);
      return nullptr;
    }
    cache_ = std::make_shared<DirRef>(fd);
    cachefd_ = fd;
    cacheRel_ = dir;
    return cache_;
  }

  // Parent directory fd of rel (dispatcher thread; valid until the next Parent call).
  int Parent(const std::string& rel, std::string* base, Failure& f) {
    if (!rel.empty() && rel.find('/') == std::string::npos) {
      *base = rel;
      return rootfd_;
    }
    DirPtr d = ParentRef(rel, base, f);
    return d ? d->fd : -1;
  }

  int Remove(int dfd, const std::string& base) {
    bool removedDir = false;
    int r = RemoveAt(dfd, base.c_str(), &removedDir);
    // A removed directory may be (an ancestor of) the cached parent, unless it
    // was removed from inside the cached parent itself. Pool threads only flag it.
    if (removedDir && dfd != cachefd_.load()) cacheDirty_.store(true);
    return r;
  }

  bool SetXattrs(const Op& op, int fd, const std::string& path, bool regularOrDir, Failure& f) {
    for (const auto& kv : op.xattrs) {
      int r = fd >= 0 ? ::fsetxattr(fd, kv.first.c_str(), kv.second.data(), kv.second.size(), 0)
                      : ::lsetxattr(path.c_str(), kv.first.c_str(), kv.second.data(), kv.second.size(), 0);
      if (r != 0 && !IgnorableXattrError(errno, kv.first, regularOrDir)) {
        f.set(errno, fd >= 0 ? "fsetxattr" : "lsetxattr", path);
        f.dest = kv.first;
        return false;
      }
    }
    return true;
  }

  // Copies non-trusted xattrs of src onto dst (fd or path); XATTR_CREATE, ignoring ENOTSUP/ENODATA/EEXIST.
  bool CopyXattrs(const std::string& src, int dstfd, const std::string& dst, Failure& f) {
    std::vector<char> names(1024);
    ssize_t n;
    for (;;) {
      n = ::llistxattr(src.c_str(), names.data(), names.size());
      if (n >= 0) break;
      if (errno == ENOTSUP || errno == ENODATA) return true;
      if (errno != ERANGE) {
        f.set(errno, "llistxattr", src);
        return false;
      }
      ssize_t need = ::llistxattr(src.c_str(), nullptr, 0);
      if (need < 0) {
        f.set(errno, "llistxattr", src);
        return false;
      }
      names.resize(static_cast<size_t>(need) + 1);
    }
    std::vector<char> val(256);
    for (ssize_t i = 0; i < n;) {
      std::string name(names.data() + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      if (name.empty() || name.rfind("trusted.", 0) == 0) continue;
      ssize_t vl;
      for (;;) {
        vl = ::lgetxattr(src.c_str(), name.c_str(), val.data(), val.size());
        if (vl >= 0 || errno != ERANGE) break;
        ssize_t need = ::lgetxattr(src.c_str(), name.c_str(), nullptr, 0);
        if (need < 0) break;
        val.resize(static_cast<size_t>(need) + 1);
      }
      if (vl < 0) {
        if (errno == ENOTSUP || errno == ENODATA) continue;
        f.set(errno, "lgetxattr", src);
        return false;
      }
      int r = dstfd >= 0 ? ::fsetxattr(dstfd, name.c_str(), val.data(), static_cast<size_t>(vl), XATTR_CREATE)
                         : ::lsetxattr(dst.c_str(), name.c_str(), val.data(), static_cast<size_t>(vl), XATTR_CREATE);
      if (r != 0 && errno != ENOTSUP && errno != ENODATA && errno != EEXIST) {
        f.set(errno, "lsetxattr", dst);
        return false;
      }
    }
    return true;
  }

  // chown, xattrs, chmod, times on an open fd (regular files, directories).
  bool FdMeta(const Op& op, int fd, const std::string& path, Failure& f) {
    if (op.chown && ::fchown(fd, op.uid, op.gid) != 0) {
      f.set(errno, "fchown", path);
      return false;
    }
    if (!SetXattrs(op, fd, path, true, f)) return false;
    if (op.perm >= 0 && ::fchmod(fd, static_cast<mode_t>(op.perm)) != 0) {
      f.set(errno, "fchmod", path);
      return false;
    }
    if (op.times && ::futimens(fd, op.ts) != 0) {
      f.set(errno, "futimens", path);
      return false;
    }
    return true;
  }

  // The same by name, never following a final symlink (links, devices, fifos).
  bool AtMeta(const Op& op, int dfd, const std::string& base, const std::string& path, Failure& f) {
    if (op.chown && ::fchownat(dfd, base.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      f.set(errno, "lchown", path);
      return false;
    }
    bool needStat = !op.xattrs.empty() || op.perm >= 0;
    struct stat st {};
    if (needStat && ::fstatat(dfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      f.set(errno, "lstat", path);
      return false;
    }
    if (!op.xattrs.empty() && !SetXattrs(op, -1, path, S_ISREG(st.st_mode) || S_ISDIR(st.st_mode), f)) return false;
    // lchmod as containerd on Linux: symlinks are skipped, anything else is chmod-ed
    // (the name is not a symlink, so fchmodat cannot follow one).
    if (op.perm >= 0 && !S_ISLNK(st.st_mode) && ::fchmodat(dfd, base.c_str(), static_cast<mode_t>(op.perm), 0) != 0) {
      f.set(errno, "chmod", path);
      return false;
    }
    if (op.times && ::utimensat(dfd, base.c_str(), op.ts, AT_SYMLINK_NOFOLLOW) != 0) {
      f.set(errno, "utimensat", path);
      return false;
    }
    return true;
  }

  bool WriteFd(int fd, const std::vector<iovec>& data, const std::string& path, Failure& f) {
    size_t i = 0;
    std::vector<iovec> iov(data.begin(), data.end());
    while (i < iov.size()) {
      int cnt = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
      ssize_t n = ::writev(fd, &iov[i], cnt);
      if (n < 0) {
        if (errno == EINTR) continue;
        f.set(errno, "write", path);
        return false;
      }
      size_t left = static_cast<size_t>(n);
      while (i < iov.size() && left >= iov[i].iov_len) {
        left -= iov[i].iov_len;
        i++;
      }
      if (left > 0) {
        iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
        iov[i].iov_len -= left;
      }
      while (i < iov.size() && iov[i].iov_len == 0) i++;
    }
    return true;
  }

  // Runs create(dfd, base); on EEXIST removes the entry and retries once.
  template <typename F>
  bool CreateReplacing(int dfd, const std::string& base, const std::string& path, const char* sc, F create,
                       Failure& f) {
    if (create() == 0) return true;
    if (errno != EEXIST) {
      f.set(errno, sc, path);
      return false;
    }
    int r = Remove(dfd, base);
    if (r) {
      f.set(r, "unlink", path);
      return false;
    }
    if (create() != 0) {
      f.set(errno, sc, path);
      return false;
    }
    return true;
  }

  bool Exec(Op& op, Failure& f) {
    std::string base;
    switch (op.type) {
      case OP_FILE: {
        if (!op.p.empty() || curfd_ < 0) {
          if (curfd_ >= 0) {
            f.message = "internal: file op opened while another file is open";
            return false;
          }
          int dfd = Parent(op.p, &base, f);
          if (dfd < 0) return false;
          int fd = CreateFile(dfd, base, Full(op.p), f);
          if (fd < 0) return false;
          curfd_ = fd;
          curpath_ = op.p;
        }
        if (!op.data.empty() && !WriteFd(curfd_, op.data, Full(curpath_), f)) return false;
        if (op.close) {
          int fd = curfd_;
          curfd_ = -1;
          return FinishFile(op, fd, Full(curpath_), f);
        }
        return true;
      }
      case OP_MKDIR: {
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) return false;
        std::string path = Full(op.p);
        mode_t m = op.perm >= 0 ? static_cast<mode_t>(op.perm) : 0755;
        if (::mkdirat(dfd, base.c_str(), m) != 0) {
          if (errno != EEXIST) {
            f.set(errno, "mkdir", path);
            return false;
          }
          struct stat st {};
          if (::fstatat(dfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            f.set(errno, "lstat", path);
            return false;
          }
          if (!S_ISDIR(st.st_mode)) {
            int r = Remove(dfd, base);
            if (r) {
              f.set(r, "unlink", path);
              return false;
            }
            if (::mkdirat(dfd, base.c_str(), m) != 0) {
              f.set(errno, "mkdir", path);
              return false;
            }
          }
        }
        int fd = ::openat(dfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          f.set(errno, "open", path);
          return false;
        }
        bool ok = FdMeta(op, fd, path, f);
        Close(fd);
        return ok;
      }
      case OP_MKPARENT: {
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) return false;
        std::string path = Full(op.p);
        if (::mkdirat(dfd, base.c_str(), 0755) != 0) {
          int e = errno;
          struct stat st {};
          bool dir = e == EEXIST && ::fstatat(dfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
          if (!dir) {
            f.set(e == EEXIST ? ENOTDIR : e, "mkdir", path);
            return false;
          }
          // raced into existence as a directory: keep it as is, unless q (a
          // deferred parent: the directory this apply made gets its metadata now)
          if (!op.quiet) return true;
        }
        int fd = ::openat(dfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          f.set(errno, "open", path);
          return false;
        }
        bool ok = true;
        if (op.perm < 0) op.perm = 0755;  // explicit chmod: no umask on created parents
        ok = FdMeta(op, fd, path, f);
        if (ok && !op.src.empty()) ok = CopyXattrs(op.src, fd, path, f);
        Close(fd);
        return ok;
      }
      case OP_SYMLINK: {
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) return false;
        std::string path = Full(op.p);
        auto create = [&]() { return ::symlinkat(op.tg.c_str(), dfd, base.c_str()); };
        if (!CreateReplacing(dfd, base, path, "symlink", create, f)) return false;
        return AtMeta(op, dfd, base, path, f);
      }
      case OP_LINK: {
        std::string tbase;
        std::string tdir = Dirname(op.tg, &tbase);
        if (op.tg.empty() || tbase.empty()) {
          f.set(EINVAL, "link", Full(op.tg), Full(op.p));
          return false;
        }
        int tfd = OpenBeneath(tdir, f);
        if (tfd < 0) return false;
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) {
          Close(tfd);
          return false;
        }
        std::string path = Full(op.p);
        auto create = [&]() { return ::linkat(tfd, tbase.c_str(), dfd, base.c_str(), 0); };
        bool ok = CreateReplacing(dfd, base, path, "link", create, f);
        Close(tfd);
        if (!ok) {
          f.path = Full(op.tg);
          f.dest = path;
          return false;
        }
        return AtMeta(op, dfd, base, path, f);
      }
      case OP_MKNOD: {
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) return false;
        std::string path = Full(op.p);
        auto create = [&]() { return ::mknodat(dfd, base.c_str(), op.mode, op.dev); };
        if (!CreateReplacing(dfd, base, path, "mknod", create, f)) return false;
        return AtMeta(op, dfd, base, path, f);
      }
      case OP_RMALL: {
        if (op.p.empty()) {
          f.set(EINVAL, "rmall", root_);
          return false;
        }
        std::string dir = Dirname(op.p, &base);
        Failure pf;
        int dfd = dir.empty() ? rootfd_ : Parent(op.p, &base, pf);
        if (dfd < 0) {
          if (pf.err == ENOENT || pf.err == ENOTDIR) return true;  // nothing there to remove
          f = pf;
          return false;
        }
        int r = Remove(dfd, base);
        if (r) {
          f.set(r, "unlink", Full(op.p));
          return false;
        }
        return true;
      }
      case OP_WHITEOUT: {
        int dfd = Parent(op.p, &base, f);
        if (dfd < 0) return false;
        std::string path = Full(op.p);
        auto create = [&]() { return ::mknodat(dfd, base.c_str(), S_IFCHR, makedev(0, 0)); };
        if (!CreateReplacing(dfd, base, path, "mknod", create, f)) return false;
        if (op.chown && ::fchownat(dfd, base.c_str(), op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0) {
          f.set(errno, "lchown", path);
          return false;
        }
        return true;
      }
      case OP_SETXATTR: {
        std::string path = Full(op.p);
        if (!op.p.empty()) {
          // verify the parent chain before touching the path by name
          int dfd = Parent(op.p, &base, f);
          if (dfd < 0) return false;
        }
        if (::lsetxattr(path.c_str(), op.xn.c_str(), op.xv.data(), op.xv.size(), 0) != 0) {
          f.set(errno, "lsetxattr", path);
          f.dest = op.xn;
          return false;
        }
        return true;
      }
      case OP_TIMES: {
        std::string path = Full(op.p);
        int r;
        if (op.p.empty()) {
          r = ::utimensat(AT_FDCWD, root_.c_str(), op.ts, AT_SYMLINK_NOFOLLOW);
        } else {
          Failure pf;
          int dfd = Parent(op.p, &base, pf);
          if (dfd < 0) {
            if (op.quiet && pf.err == ENOENT) return true;
            f = pf;
            return false;
          }
          r = ::utimensat(dfd, base.c_str(), op.ts, AT_SYMLINK_NOFOLLOW);
        }
        if (r != 0) {
          if (op.quiet && errno == ENOENT) return true;
          f.set(errno, "utimensat", path);
          return false;
        }
        return true;
      }
      case OP_COPYUP:
        return CopyUp(op, f);
      default:
        f.message = "internal: unknown op type " + std::to_string(op.type);
        return false;
    }
  }

  // Copies the object at op.src (absolute, in a lower layer) to op.p with its
  // owner, mode, times and non-trusted xattrs (overlay's copy-up).
  bool CopyUp(Op& op, Failure& f) {
    std::string base;
    int dfd = Parent(op.p, &base, f);
    if (dfd < 0) return false;
    std::string path = Full(op.p);
    struct stat st {};
    if (::lstat(op.src.c_str(), &st) != 0) {
      f.set(errno, "lstat", op.src);
      return false;
    }
    timespec ts[2] = {st.st_atim, st.st_mtim};
    if (S_ISREG(st.st_mode)) {
      int in = ::open(op.src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (in < 0) {
        f.set(errno, "open", op.src);
        return false;
      }
      int out = -1;
      auto create = [&]() {
        out = ::openat(dfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        return out < 0 ? -1 : 0;
      };
      if (!CreateReplacing(dfd, base, path, "open", create, f)) {
        Close(in);
        return false;
      }
      bool ok = true;
      for (;;) {
        ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
        if (n == 0) break;
        if (n > 0) continue;
        if (errno == EINTR) continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
          f.set(errno, "copy_file_range", path);
          ok = false;
          break;
        }
        std::vector<char> buf(1 << 20);
        for (;;) {
          ssize_t r = ::read(in, buf.data(), buf.size());
          if (r == 0) break;
          if (r < 0) {
            if (errno == EINTR) continue;
            f.set(errno, "read", op.src);
            ok = false;
            break;
          }
          for (ssize_t w = 0; w < r;) {
            ssize_t k = ::write(out, buf.data() + w, static_cast<size_t>(r - w));
            if (k < 0) {
              if (errno == EINTR) continue;
              f.set(errno, "write", path);
              ok = false;
              break;
            }
            w += k;
          }
          if (!ok) break;
        }
        break;
      }
      if (ok && ::fchown(out, st.st_uid, st.st_gid) != 0) {
        f.set(errno, "fchown", path);
        ok = false;
      }
      if (ok) ok = CopyXattrs(op.src, out, path, f);
      if (ok && ::fchmod(out, st.st_mode & 07777) != 0) {
        f.set(errno, "fchmod", path);
        ok = false;
      }
      if (ok && ::futimens(out, ts) != 0) {
        f.set(errno, "futimens", path);
        ok = false;
      }
      Close(in);
      Close(out);
      return ok;
    }
    if (S_ISLNK(st.st_mode)) {
      std::vector<char> buf(static_cast<size_t>(st.st_size) + 2 > 4096 ? static_cast<size_t>(st.st_size) + 2 : 4096);
      ssize_t n = ::readlink(op.src.c_str(), buf.data(), buf.size() - 1);
      if (n < 0) {
        f.set(errno, "readlink", op.src);
        return false;
      }
      std::string target(buf.data(), static_cast<size_t>(n));
      auto create = [&]() { return ::symlinkat(target.c_str(), dfd, base.c_str()); };
      if (!CreateReplacing(dfd, base, path, "symlink", create, f)) return false;
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      auto create = [&]() { return ::mknodat(dfd, base.c_str(), st.st_mode, st.st_rdev); };
      if (!CreateReplacing(dfd, base, path, "mknod", create, f)) return false;
    } else {
      f.set(EPERM, "copyup", op.src, path);
      return false;
    }
    if (::fchownat(dfd, base.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
      f.set(errno, "lchown", path);
      return false;
    }
    if (!CopyXattrs(op.src, -1, path, f)) return false;
    if (!S_ISLNK(st.st_mode) && ::fchmodat(dfd, base.c_str(), st.st_mode & 07777, 0) != 0) {
      f.set(errno, "chmod", path);
      return false;
    }
    if (::utimensat(dfd, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      f.set(errno, "utimensat", path);
      return false;
    }
    return true;
  }

  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    if (busy_) throw Napi::Error::New(info.Env(), "ApplySession.close: a batch is still running");
    CloseAll();
    return info.Env().Undefined();
  }

  friend class BatchWorker;
};

bool Decode(Batch& batch, Failure& f);

class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, ApplySession* s, Napi::Object self, Napi::Object packed, Napi::Array data, std::unique_ptr<Batch> b)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), session_(s), batch_(std::move(b)) {
    // keep the session, the packed ops and the data buffers alive while the pool thread uses them
    self_ = Napi::Persistent(self);
    packed_ = Napi::Persistent(packed);
    data_ = Napi::Persistent(data.As<Napi::Object>());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    // decoded here, not in run(): the main thread only hands the buffers over
    if (!Decode(*batch_, failure_)) {
      session_->failed_ = true;  // as a batch that failed while running
      return;
    }
    session_->Execute(*batch_, failure_);
  }
  void OnOK() override {
    session_->busy_ = false;
    if (failure_.ok()) {
      deferred_.Resolve(Env().Undefined());
    } else {
      deferred_.Reject(failure_.ToError(Env()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    session_->busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  ApplySession* session_;
  std::unique_ptr<Batch> batch_;
  Napi::ObjectReference self_, packed_, data_;
  Failure failure_;
};

// Which op fields each op type takes.
enum Field : unsigned {
  F_DATA = 1,
  F_OWNER = 2,
  F_MODE = 4,
  F_TIMES = 8,
  F_XATTRS = 16,
  F_TARGET = 32,
  F_DEV = 64,
  F_SRC = 128,
  F_XV = 256,
  F_QUIET = 512,
};
constexpr unsigned F_META = F_OWNER | F_MODE | F_TIMES | F_XATTRS;
constexpr unsigned kFields[] = {
    0,
    F_DATA | F_META,             // OP_FILE
    F_META,                      // OP_MKDIR
    F_META | F_SRC | F_QUIET,    // OP_MKPARENT
    F_META | F_TARGET,           // OP_SYMLINK (mode ignored)
    F_META | F_TARGET,           // OP_LINK
    F_META | F_DEV,              // OP_MKNOD
    0,                           // OP_RMALL
    F_OWNER,                     // OP_WHITEOUT
    F_XV,                        // OP_SETXATTR
    F_TIMES | F_QUIET,           // OP_TIMES
    F_SRC,                       // OP_COPYUP
};

// Ops arrive packed (run(packed, data)), encoded by src/archive/ops.ts's
// Packer into one buffer, little endian:
//   u8 type, u16 flags, str p, then per flag, in this order:
//   F_DATA u32 first, u32 count (slices of the data array) | F_OWNER u32 uid, u32 gid |
//   F_MODE u32 | F_TIMES f64 x4 | F_XATTRS u32 n, n x (str name, str value) |
//   F_TARGET str | F_DEV f64 mode, f64 dev | F_SRC str | F_XV str name, str value
// where str = u32 length + bytes; PF_CLOSE and F_QUIET are flags only. What a
// type does not take (kFields) is read and ignored.
// Presence flags: the Field bits (F_OWNER = u and g, F_MODE = md, ...) plus CLOSE.
constexpr unsigned PF_CLOSE = 1024;

class Unpacker {
 public:
  Unpacker(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool done() const { return off_ >= n_; }
  uint8_t U8() {
    Need(1);
    return p_[off_++];
  }
  uint32_t U16() {
    Need(2);
    uint32_t v = p_[off_] | (p_[off_ + 1] << 8);
    off_ += 2;
    return v;
  }
  uint32_t U32() { return Fixed<uint32_t>(); }
  double F64() { return Fixed<double>(); }
  std::string Str() {
    uint32_t len = U32();
    Need(len);
    std::string v(reinterpret_cast<const char*>(p_ + off_), len);
    off_ += len;
    return v;
  }

 private:
  // a little-endian scalar (the host order: x86-64, arm64)
  template <typename T>
  T Fixed() {
    Need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + off_, sizeof(T));
    off_ += sizeof(T);
    return v;
  }
  void Need(size_t k) {
    if (n_ - off_ < k || off_ > n_) throw std::out_of_range("packed ops truncated");
  }
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

bool Decode(Batch& batch, Failure& f) {
  const std::vector<iovec>& vecs = batch.data;
  auto bad = [&](const std::string& why) {
    f.message = "ApplySession.run: " + why;
    return false;
  };
  try {
    Unpacker u(batch.packed, batch.packedLen);
    while (!u.done()) {
      batch.ops.emplace_back();
      Op& op = batch.ops.back();
      op.type = u.U8();
      if (op.type < OP_FILE || op.type > OP_COPYUP) return bad("unknown op type");
      const unsigned need = kFields[op.type];
      const unsigned fl = u.U16();
      op.p = u.Str();
      if (!ValidRel(op.p)) return bad("op path must be clean and relative: " + op.p);
      if (fl & F_DATA) {
        uint32_t first = u.U32(), count = u.U32();
        if (first > vecs.size() || count > vecs.size() - first) return bad("op data out of range");
        if (need & F_DATA) {
          for (uint32_t j = first; j < first + count; j++) {
            if (vecs[j].iov_len) op.data.push_back(vecs[j]);
          }
        }
      }
      if (need & F_DATA) op.close = (fl & PF_CLOSE) != 0;
      bool meta = !(op.type == OP_FILE && !op.close);  // a file op that does not close carries no metadata
      if (fl & F_OWNER) {
        uint32_t uid = u.U32(), gid = u.U32();
        if (meta && (need & F_OWNER)) {
          op.chown = true;
          op.uid = static_cast<uid_t>(uid);
          op.gid = static_cast<gid_t>(gid);
        }
      }
      if (fl & F_MODE) {
        uint32_t md = u.U32();
        if (meta && (need & F_MODE)) op.perm = static_cast<int>(md & 07777);
      }
      if (fl & F_TIMES) {
        double t[4];
        for (double& x : t) x = u.F64();
        if (meta && (need & F_TIMES)) {
          op.times = true;
          op.ts[0].tv_sec = static_cast<time_t>(t[0]);
          op.ts[0].tv_nsec = static_cast<long>(t[1]);
          op.ts[1].tv_sec = static_cast<time_t>(t[2]);
          op.ts[1].tv_nsec = static_cast<long>(t[3]);
        }
      }
      if (fl & F_XATTRS) {
        uint32_t xn = u.U32();
        for (uint32_t j = 0; j < xn; j++) {
          std::string name = u.Str();
          std::string value = u.Str();
          if (meta && (need & F_XATTRS)) op.xattrs.emplace_back(std::move(name), std::move(value));
        }
      }
      if (fl & F_TARGET) {
        std::string tg = u.Str();
        if (need & F_TARGET) op.tg = std::move(tg);
      }
      if (op.type == OP_LINK && !ValidRel(op.tg)) return bad("link target must be clean: " + op.tg);
      if (fl & F_DEV) {
        double mode = u.F64(), dev = u.F64();
        if (need & F_DEV) {
          op.mode = static_cast<mode_t>(mode);
          op.dev = static_cast<dev_t>(dev);
        }
      }
      if (fl & F_SRC) {
        std::string src = u.Str();
        if (need & F_SRC) op.src = std::move(src);
      }
      if (fl & F_XV) {
        std::string xn = u.Str(), xv = u.Str();
        if (need & F_XV) {
          op.xn = std::move(xn);
          op.xv = std::move(xv);
        }
      }
      if (need & F_QUIET) op.quiet = (fl & F_QUIET) != 0;
    }
  } catch (const std::out_of_range& e) {
    return bad(e.what());
  }
  return true;
}

Napi::Value ApplySession::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy_) throw Napi::Error::New(env, "ApplySession.run: previous batch still running");
  if (failed_) throw Napi::Error::New(env, "ApplySession.run: session failed earlier");
  if (rootfd_ < 0) throw Napi::Error::New(env, "ApplySession.run: session closed");
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsArray()) throw Napi::TypeError::New(env, "run(packed: Buffer, data: Uint8Array[])");
  auto packed = info[0].As<Napi::Buffer<uint8_t>>();
  Napi::Array data = info[1].As<Napi::Array>();
  auto batch = std::make_unique<Batch>();
  batch->packed = packed.Data();
  batch->packedLen = packed.Length();
  batch->data.resize(data.Length());
  for (uint32_t j = 0; j < data.Length(); j++) {
    Napi::Value bv = data.Get(j);
    if (!bv.IsTypedArray()) throw Napi::TypeError::New(env, "data must be Uint8Arrays");
    auto ta = bv.As<Napi::Uint8Array>();
    batch->data[j] = iovec{ta.Data(), ta.ByteLength()};
  }
  busy_ = true;
  auto* w = new BatchWorker(env, this, info.This().As<Napi::Object>(), packed, data, std::move(batch));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitApply(Napi::Env env, Napi::Object exports) {
  exports.Set("ApplySession", ApplySession::Define(env));
}

}  // namespace distnative
