// Waiting on a condition within a deadline, for tests that can only observe a condition by
// looking again (a metric, a group's committed offsets).

#ifndef KAFKA_SIDECAR_TESTING_WAIT_H_
#define KAFKA_SIDECAR_TESTING_WAIT_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kafka_sidecar::testing {

// Looks at `holds` every `interval` until it is true (returns true) or `timeout` has passed
// (returns false after one last look).
inline bool WaitUntil(const std::function<bool()>& holds, absl::Duration timeout,
                      absl::Duration interval = absl::Milliseconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!holds()) {
    if (absl::Now() >= deadline) return holds();
    absl::SleepFor(interval);  // NOLINT(sleep-ok): between looks, within the deadline
  }
  return true;
}

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_WAIT_H_
