#ifndef KAFKA_SIDECAR_TESTING_SIMULATED_CLOCK_H_
#define KAFKA_SIDECAR_TESTING_SIMULATED_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "sidecar/common/clock.h"

namespace kafka_sidecar::testing {

// A clock that moves only when the test says so. Starts at the real time. Thread-safe.
class SimulatedClock final : public sidecar::Clock {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_SIMULATED_CLOCK_H_
