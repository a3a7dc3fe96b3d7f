#include "sidecar/consume/delivery_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {

absl::Duration DoublingBackoff(absl::Duration first, absl::Duration cap, uint32_t doublings) {
  cap = std::max(first, cap);
  absl::Duration backoff = first;
  for (uint32_t i = 0; i < doublings && backoff < cap; ++i) backoff *= 2;
  return std::min(backoff, cap);
}

absl::Duration DeliveryPolicy::Backoff(uint32_t attempt) const {
  if (min_backoff <= absl::ZeroDuration()) return absl::ZeroDuration();
  return DoublingBackoff(min_backoff, max_backoff, attempt > 0 ? attempt - 1 : 0);
}

bool DeliveryPolicy::GivesUp(uint32_t attempt, bool dead_letter) const {
  if (dead_letter_topic.empty()) return false;
  return dead_letter || (max_delivery_attempts > 0 && attempt >= max_delivery_attempts);
}

DeadLetterRecord MakeDeadLetterRecord(const DeliveryPolicy& policy, const broker::Message& record,
                                      const std::string& group, uint32_t attempts,
                                      const std::string& reason) {
  DeadLetterRecord out{policy.dead_letter_topic, record.key, record.value, record.headers};
  out.headers.push_back({"dlq.original.topic", record.tp.topic});
  out.headers.push_back({"dlq.original.partition", absl::StrCat(record.tp.partition)});
  out.headers.push_back({"dlq.original.offset", absl::StrCat(record.offset)});
  out.headers.push_back({"dlq.original.timestamp_ms", absl::StrCat(record.timestamp_ms)});
  out.headers.push_back({"dlq.group", group});
  out.headers.push_back({"dlq.delivery.attempts", absl::StrCat(attempts)});
  out.headers.push_back({"dlq.reason", reason});
  return out;
}

}  // namespace kafka_sidecar::sidecar
