#ifndef KAFKA_SIDECAR_SIDECAR_COMMON_CLOCK_H_
#define KAFKA_SIDECAR_SIDECAR_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kafka_sidecar::sidecar {

// The time source of everything that decides by time (commit schedule, linger, inactivity),
// so that tests can drive it (testing/simulated_clock.h). Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;

  // The wall clock.
  static Clock& Real();
};

inline Clock& Clock::Real() {
  class RealClock final : public Clock {
   public:
    absl::Time Now() override { return absl::Now(); }
  };
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_COMMON_CLOCK_H_
