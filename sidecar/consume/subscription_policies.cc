#include "sidecar/consume/subscription_policies.h"

#include <algorithm>

namespace kafka_sidecar::sidecar {

CommitSchedule::CommitSchedule(absl::Duration interval, absl::Duration max_backoff,
                               absl::Time now)
    : interval_(interval), max_backoff_(max_backoff), next_(now + interval), backoff_(interval) {}

void CommitSchedule::Succeeded(absl::Time now) {
  in_flight_ = false;
  backoff_ = interval_;
  next_ = now + interval_;
}

absl::Duration CommitSchedule::Failed(absl::Time now) {
  in_flight_ = false;
  backoff_ = std::min(backoff_ * 2, max_backoff_);
  next_ = now + backoff_;
  return backoff_;
}

KafkaLiveness::KafkaLiveness(absl::Duration unavailable_timeout, absl::Time now)
    : unavailable_timeout_(unavailable_timeout),
      check_interval_(std::clamp(unavailable_timeout / 10, absl::Milliseconds(100),
                                 absl::Seconds(5))),
      last_contact_(now) {}

KafkaLiveness::Verdict KafkaLiveness::Judge(absl::Time now) {
  Verdict verdict;
  const absl::Duration silent = now - last_contact_;
  if (silent >= unavailable_timeout_) {
    verdict.unreachable_for = silent;
    return verdict;
  }
  if (silent >= check_interval_ && now - last_check_ >= check_interval_) {
    last_check_ = now;
    verdict.check = std::min(check_interval_, absl::Seconds(1));
  }
  return verdict;
}

FlowControl::FlowControl(size_t max_records, size_t max_bytes, size_t max_poll)
    : max_records_(max_records), max_bytes_(max_bytes), max_poll_(max_poll) {}

size_t FlowControl::Room(size_t records, size_t bytes) const {
  if (records >= max_records_ || bytes >= max_bytes_) return 0;
  return std::min(max_poll_, max_records_ - records);
}

FlowControl::Change FlowControl::Update(size_t records, size_t bytes) {
  if (!paused_ && Room(records, bytes) == 0) {
    paused_ = true;
    return Change::kPause;
  }
  if (paused_ && AtResumeMark(records, bytes)) {
    paused_ = false;
    return Change::kResume;
  }
  return Change::kNone;
}

}  // namespace kafka_sidecar::sidecar
