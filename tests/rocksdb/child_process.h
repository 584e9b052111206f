// ChildProcess: runs this test binary again in a helper mode (see
// test_main.cc) as a separate process, to hold a directory's LOCK or to be
// killed with SIGKILL in the middle of its writes.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace idem::testing {

class ChildProcess {
 public:
  // Starts /proc/self/exe with `args`; its stdout is readable by ReadLine.
  explicit ChildProcess(const std::vector<std::string>& args);
  ~ChildProcess();  // SIGKILLs and reaps the child if it still runs

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }

  // The next line the child wrote (without '\n'), or nullopt at EOF.
  std::optional<std::string> ReadLine();

  // SIGKILL, then wait for the child to be gone.
  void Kill();

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

}  // namespace idem::testing
