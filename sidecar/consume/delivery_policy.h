#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_DELIVERY_POLICY_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_DELIVERY_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "broker/consumer.h"

namespace kafka_sidecar::sidecar {

// `first` doubled `doublings` times, capped at `cap` (at least `first`).
absl::Duration DoublingBackoff(absl::Duration first, absl::Duration cap, uint32_t doublings);

// What a subscription does with a record its app nacks (the public API's RetryPolicy and
// DeadLetterPolicy): when it is sent again, and when it is given up on and written to a
// dead-letter topic. Every stream of one subscription shares it.
struct DeliveryPolicy {
  // The wait before the second delivery of a nacked record; it doubles with each further nack,
  // up to max_backoff. Zero: a nacked record is sent again at once.
  absl::Duration min_backoff = absl::ZeroDuration();
  absl::Duration max_backoff = absl::ZeroDuration();
  // Where records given up on are written; empty: none (records are retried without limit, and
  // a nack asking for the dead-letter topic is a plain nack).
  std::string dead_letter_topic;
  // A record nacked on this delivery attempt is given up on; 0: only a nack that asks for it.
  uint32_t max_delivery_attempts = 0;

  // How long a record nacked on delivery `attempt` (1 the first time) waits before it is sent
  // again.
  absl::Duration Backoff(uint32_t attempt) const;
  // Whether a nacked record holds back the later records of its key until it is acked or given
  // up on: with a backoff or a dead-letter topic.
  bool HoldsKey() const {
    return min_backoff > absl::ZeroDuration() || !dead_letter_topic.empty();
  }
  // Whether a record nacked on delivery `attempt` goes to the dead-letter topic, the app having
  // asked for that (`dead_letter`) or not.
  bool GivesUp(uint32_t attempt, bool dead_letter) const;

  friend bool operator==(const DeliveryPolicy& a, const DeliveryPolicy& b) {
    return a.min_backoff == b.min_backoff && a.max_backoff == b.max_backoff &&
           a.dead_letter_topic == b.dead_letter_topic &&
           a.max_delivery_attempts == b.max_delivery_attempts;
  }
  friend bool operator!=(const DeliveryPolicy& a, const DeliveryPolicy& b) { return !(a == b); }
};

// The record written to the dead-letter topic for `record`, given up on after `attempts`
// deliveries in `group`, with the app's `reason`: its key, value and headers, and the
// dlq.original.topic, dlq.original.partition, dlq.original.offset, dlq.original.timestamp_ms,
// dlq.group, dlq.delivery.attempts and dlq.reason headers (numbers as decimal text). The topic
// is the policy's.
struct DeadLetterRecord {
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  std::vector<broker::Header> headers;
};
DeadLetterRecord MakeDeadLetterRecord(const DeliveryPolicy& policy, const broker::Message& record,
                                      const std::string& group, uint32_t attempts,
                                      const std::string& reason);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_DELIVERY_POLICY_H_
