#ifndef KAFKA_SIDECAR_TESTING_SUBPROCESS_H_
#define KAFKA_SIDECAR_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/config.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kafka_sidecar::testing {

// A child process whose stdout and stderr go to a log file. Not thread-safe.
class Subprocess {
 public:
  // Starts `argv[0]` with `argv`. INTERNAL when it cannot be started.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                           const std::string& log_path);
  // Kills the child (SIGKILL) if it still runs.
  ~Subprocess();

  void Signal(int signal);

  // Waits up to `timeout` for the child to exit. Its exit code (128 + signal when a signal
  // ended it), or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Everything the child wrote so far.
  std::string Log() const;

  // Waits until the log contains `text` (true), the child exits or `timeout` passes (false).
  bool WaitForLog(const std::string& text, absl::Duration timeout);

  // The child's resident memory (VmRSS), in bytes; 0 when it cannot be read.
  int64_t ResidentBytes() const;
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int pidfd, std::string log_path)
      : pid_(pid), pidfd_(pidfd), log_path_(std::move(log_path)) {}

  pid_t pid_;
  int pidfd_;  // becomes readable when the child exits
  std::string log_path_;
  bool exited_ = false;
  int exit_code_ = -1;
};

// Facts about a running process (getpid() for this one), read from /proc.
// Resident memory (VmRSS) in bytes; 0 when it cannot be read.
int64_t ResidentBytesOf(pid_t pid);
// Its threads, and those whose name starts with `prefix` (librdkafka names its threads "rdk:",
// each client's main thread "rdk:main").
int ThreadCount(pid_t pid);
int ThreadsNamed(pid_t pid, const std::string& prefix);

// Built with AddressSanitizer: resident sizes mean little (shadow memory, quarantine).
#if defined(ABSL_HAVE_ADDRESS_SANITIZER)  // gcc or clang
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// A path for a unix socket, short enough for sun_path, in a new directory of its own.
std::string UnixSocketPath(const std::string& name);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_SUBPROCESS_H_
