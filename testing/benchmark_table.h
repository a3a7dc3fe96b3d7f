#ifndef KAFKA_SIDECAR_TESTING_BENCHMARK_TABLE_H_
#define KAFKA_SIDECAR_TESTING_BENCHMARK_TABLE_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kafka_sidecar::testing {

// What a benchmark's main does first: flags, quiet logging (--v=1 brings librdkafka's debug
// back), and no deadlock detection, as in the sidecar's own main.
inline void InitBenchmark(int* argc, char*** argv) {
  gflags::ParseCommandLineFlags(argc, argv, true);
  FLAGS_logtostderr = true;
  if (FLAGS_v == 0) FLAGS_minloglevel = 1;
  google::InitGoogleLogging((*argv)[0]);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// The throughput table the benchmarks print: one row per path, the direct client first.
class BenchmarkTable {
 public:
  explicit BenchmarkTable(int64_t records) : records_(records) {
    std::printf("%-40s %10s %9s %12s %9s\n", "path", "records", "seconds", "records/s",
                "of direct");
  }

  // The first row is the baseline the others are compared with.
  void Row(const std::string& path, absl::Duration elapsed) {
    const double rate = static_cast<double>(records_) / absl::ToDoubleSeconds(elapsed);
    if (baseline_ == 0) baseline_ = rate;
    std::printf("%-40s %10lld %9.3f %12.0f %8.1f%%\n", path.c_str(),
                static_cast<long long>(records_), absl::ToDoubleSeconds(elapsed), rate,
                100.0 * rate / baseline_);
    std::fflush(stdout);
  }

 private:
  const int64_t records_;
  double baseline_ = 0;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_BENCHMARK_TABLE_H_
