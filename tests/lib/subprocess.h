// Subprocess: runs a program (an example, a test helper) as a child
// process for crash tests: its output goes to a file, the test may SIGKILL
// it at any moment, and every wait is bounded. The destructor SIGKILLs and
// reaps a child that still runs. Also a temporary directory that removes
// itself. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "idem/status.h"

namespace idem::libtest {

struct ExitInfo {
  bool exited = false;  // false: killed by `signal`
  int code = 0;
  int signal = 0;

  bool Success() const { return exited && code == 0; }
  std::string ToString() const;
};

class Subprocess {
 public:
  // Starts argv[0] (a path) with stdout and stderr appended to
  // `output_path`.
  static Result<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                   const std::string& output_path);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Waits for the child to end; kDeadlineExceeded (child killed) after
  // `limit`.
  Result<ExitInfo> Wait(std::chrono::milliseconds limit);
  // Whether the child has ended (reaps it if so).
  bool Done();
  // SIGKILL and reap.
  ExitInfo Kill();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
  ExitInfo exit_;
};

// Starts, waits at most `limit`, returns how it ended.
Result<ExitInfo> RunChild(const std::vector<std::string>& argv,
                          const std::string& output_path,
                          std::chrono::milliseconds limit);

std::string ReadFileOrEmpty(const std::string& path);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace idem::libtest
