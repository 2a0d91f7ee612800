// Shared helpers: Node-style errno errors (err.code = "ENOENT", err.errno,
// err.syscall, err.path) so JS callers classify them like fs errors.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace distnative {

// Symbolic name of an errno value ("ENOENT"), or "E<n>" when unknown.
const char* ErrnoName(int err);

// Builds a JS Error shaped like Node's fs errors.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path = "",
                       const std::string& dest = "");

// A path argument: a Buffer (raw bytes) or a string (UTF-8).
std::string PathValue(Napi::Value v, const char* what);

// A failure captured on a worker thread, turned into a JS error on the main thread.
struct Failure {
  int err = 0;
  std::string syscall;
  std::string path;
  std::string dest;
  long index = -1;  // op index inside a batch, -1 when not applicable
  std::string message;  // non-errno failure (err == 0)

  bool ok() const { return err == 0 && message.empty(); }
  void set(int e, const char* sc, const std::string& p, const std::string& d = "") {
    err = e;
    syscall = sc;
    path = p;
    dest = d;
  }
  Napi::Error ToError(Napi::Env env) const;
};

}  // namespace distnative
