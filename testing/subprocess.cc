#include "testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace kafka_sidecar::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const std::vector<std::string>& argv,
                                                              const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) return absl::InternalError(absl::StrCat("cannot open ", log_path));
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // The test may block signals for its own threads; the child starts with none blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log);
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::InternalError("pidfd_open failed");
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pidfd, log_path));
}

Subprocess::~Subprocess() {
  if (!exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close(pidfd_);
}

void Subprocess::Signal(int signal) {
  if (!exited_) kill(pid_, signal);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (exited_) return exit_code_;
  pollfd fd = {pidfd_, POLLIN, 0};
  if (poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) {
    return absl::DeadlineExceededError(absl::StrCat("still running after ", absl::FormatDuration(timeout)));
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  exited_ = true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

std::string Subprocess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Subprocess::WaitForLog(const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // Re-reads the log whenever the child exits or every check interval, until the deadline.
  constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);
  while (true) {
    if (Log().find(text) != std::string::npos) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    if (Wait(std::min(left, kCheckInterval)).ok()) return Log().find(text) != std::string::npos;
  }
}

int64_t Subprocess::ResidentBytes() const { return ResidentBytesOf(pid_); }

int64_t ResidentBytesOf(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kb = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(
                               absl::StripSuffix(absl::string_view(line).substr(6), "kB")),
                           &kb)) {
        return kb * 1024;
      }
    }
  }
  return 0;
}

int ThreadCount(pid_t pid) { return ThreadsNamed(pid, ""); }

int ThreadsNamed(pid_t pid, const std::string& prefix) {
  int count = 0;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && absl::StartsWith(name, prefix)) ++count;
  }
  return count;
}

std::string UnixSocketPath(const std::string& name) {
  // Test sandboxes may share /tmp and even pids (pid namespaces): a fresh directory is unique.
  char dir[] = "/tmp/kafka-sidecar-XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::StrCat("/tmp/kafka-sidecar-", name, ".sock");
  return absl::StrCat(dir, "/", name, ".sock");
}

}  // namespace kafka_sidecar::testing
