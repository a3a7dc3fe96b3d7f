#ifndef KAFKA_SIDECAR_SIDECAR_METRICS_H_
#define KAFKA_SIDECAR_SIDECAR_METRICS_H_

#include <atomic>
#include <cstdint>

namespace kafka_sidecar::sidecar {

// Counters of the consume path, shared by every subscription and stream. Thread-safe (each is
// an atomic); read by tests now and by the /metrics page later.
struct ConsumeMetrics {
  std::atomic<int64_t> records_delivered{0};    // sent to an app, redeliveries included
  std::atomic<int64_t> records_redelivered{0};  // sent again after a nack or a stream leaving
  std::atomic<int64_t> records_acked{0};
  std::atomic<int64_t> records_nacked{0};
  std::atomic<int64_t> unknown_acks{0};  // acks and nacks of unknown or stale delivery ids
  // Records dropped because their partitions went to another group member (their acks
  // become stale; the new owner delivers them again).
  std::atomic<int64_t> records_revoked{0};
  std::atomic<int64_t> commits_succeeded{0};
  std::atomic<int64_t> commits_failed{0};
  std::atomic<int64_t> pauses{0};  // times a subscription paused its partitions
  std::atomic<int64_t> inactivity_drops{0};  // streams ended for holding records silently
  std::atomic<int64_t> rebalances{0};  // assignments and revocations a subscription was told of
  std::atomic<int64_t> assigned_partitions{0};  // now, over every subscription
  std::atomic<int64_t> subscriptions{0};        // open now
  std::atomic<int64_t> streams{0};        // open now
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_METRICS_H_
