#ifndef KAFKA_SIDECAR_SIDECAR_COMMON_METRICS_H_
#define KAFKA_SIDECAR_SIDECAR_COMMON_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace kafka_sidecar::sidecar {

// Counters of the produce path: what Kafka acknowledged or refused, and how long it took from
// the sidecar taking a record to Kafka's answer. Thread-safe.
struct ProduceMetrics {
  // Upper bounds of the latency histogram's buckets, in seconds (then +Inf).
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  void Record(const absl::Status& status, absl::Duration latency) {
    if (status.ok()) {
      records_produced++;
    } else {
      errors[static_cast<size_t>(status.code()) % errors.size()]++;
    }
    const double seconds = absl::ToDoubleSeconds(latency);
    size_t bucket = 0;
    while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
    latency_buckets[bucket]++;
    latency_sum_us += absl::ToInt64Microseconds(latency);
  }

  std::atomic<int64_t> records_produced{0};
  // ProduceBatchStream batches handed to the producer (their records count one by one above).
  std::atomic<int64_t> batches{0};
  // Records that produce streams accepted and whose answers are not yet written to the app:
  // what --max_pending_produces bounds per stream (a gauge).
  std::atomic<int64_t> pending_records{0};
  std::array<std::atomic<int64_t>, 17> errors{};  // by absl::StatusCode
  std::array<std::atomic<int64_t>, kLatencyBuckets.size() + 1> latency_buckets{};  // not cumulative
  std::atomic<int64_t> latency_sum_us{0};
};

// Counters of the consume path, shared by every subscription and stream. Thread-safe (each is
// an atomic); read by tests and by the /metrics page.
struct ConsumeMetrics {
  std::atomic<int64_t> records_delivered{0};    // sent to an app, redeliveries included
  std::atomic<int64_t> records_redelivered{0};  // sent again after a nack or a stream leaving
  std::atomic<int64_t> records_acked{0};
  std::atomic<int64_t> records_nacked{0};
  std::atomic<int64_t> unknown_acks{0};  // acks and nacks of unknown or stale delivery ids
  // Nacked records to be sent again (after the retry policy's backoff); records written to a
  // dead-letter topic (their offsets then count as acked); dead-letter writes that failed
  // (each is tried again).
  std::atomic<int64_t> records_retried{0};
  std::atomic<int64_t> records_dead_lettered{0};
  std::atomic<int64_t> dead_letter_write_failures{0};
  // Records dropped because their partitions went to another group member (their acks
  // become stale; the new owner delivers them again).
  std::atomic<int64_t> records_revoked{0};
  std::atomic<int64_t> commits_succeeded{0};
  std::atomic<int64_t> commits_failed{0};
  std::atomic<int64_t> pauses{0};  // times a subscription paused its partitions
  std::atomic<int64_t> inactivity_drops{0};  // streams ended for holding records silently
  std::atomic<int64_t> rebalances{0};  // assignments and revocations a subscription was told of
  // Subscriptions ended because Kafka refused their JoinGroup: the group's other members use an
  // assignment strategy this sidecar does not offer (INCONSISTENT_GROUP_PROTOCOL).
  std::atomic<int64_t> group_protocol_mismatches{0};
  std::atomic<int64_t> subscriptions{0};        // open now
  std::atomic<int64_t> streams{0};        // open now
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_COMMON_METRICS_H_
