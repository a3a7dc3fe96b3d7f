#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_CONFIG_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/kafka_config.h"
#include "sidecar/consume/dispatcher.h"

namespace kafka_sidecar::sidecar {

// How a consumer group spreads partitions over its members (librdkafka's
// partition.assignment.strategy). Every member of a group must offer the same.
enum class AssignmentStrategy {
  kCooperativeSticky,  // a rebalance stops only the partitions that move
  kRange,              // every member stops (librdkafka's and the Java client's first choice)
  kRoundRobin,         // every member stops
};

// The flag's (and librdkafka's) name of each value, and back: INVALID_ARGUMENT naming the flag
// and the accepted values for any other text.
absl::string_view AssignmentStrategyName(AssignmentStrategy strategy);
absl::StatusOr<AssignmentStrategy> ParseAssignmentStrategy(absl::string_view name);
absl::string_view OrderingName(Ordering ordering);
absl::StatusOr<Ordering> ParseOrdering(absl::string_view name);

// Everything the sidecar is configured with. main.cc fills it from flags; the rest of the code
// (and every test) takes this struct and never reads flags.
struct SidecarConfig {
  // gRPC address: `host:port` or `unix:/path`. Port 0 picks a free port.
  std::string listen = "127.0.0.1:50051";
  // Needed for a `listen` address other than loopback or a unix socket: the API has no
  // authentication.
  bool allow_remote = false;
  // A second gRPC address serving only grpc.health.v1 (kubelet probes reach the pod's IP, the
  // API stays on loopback); empty: none.
  std::string health_listen;
  // HTTP address of /metrics, /healthz and /readyz; empty: none.
  std::string metrics_listen = "127.0.0.1:9464";
  // How often Kafka's reachability is checked for the health status.
  absl::Duration health_check_interval = absl::Seconds(5);
  // Kafka bootstrap servers, or "embedded" for the in-process in-memory cluster.
  std::string brokers;
  // Extra librdkafka settings, applied after the sidecar's own.
  broker::KafkaSettings kafka_settings;
  // Records of one ProduceStream or ProduceBatchStream accepted and not yet answered.
  int max_pending_produces = 1000;
  // Consume: cap (and default) of a stream's unacked records.
  int max_in_flight_per_stream = 1000;
  // Consume: how often acked offsets are committed.
  absl::Duration commit_interval = absl::Seconds(1);
  // Consume: records waiting in the sidecar for one subscription (fetched, not yet sent to an
  // app) at which its partitions are paused (they resume at a quarter).
  int max_buffered_records = 100000;
  // Consume: the same bound in MiB of record data.
  int max_buffered_mib = 64;
  // Consume: how long a subscription's poll of Kafka waits when nothing comes (a record, a
  // group event and room in the queues each end it at once): the resolution of its timers
  // (commits, inactivity, linger). Not a flag.
  absl::Duration consumer_poll_timeout = absl::Milliseconds(100);
  // Consume: subscriptions (group memberships, one per group and topic set) held at once.
  // Each costs a poll thread, librdkafka's threads and connections, and up to its buffer
  // budget of memory; a stream that needs one more is refused with RESOURCE_EXHAUSTED.
  int max_subscriptions = 100;
  // Consume: how long a subscription outlives its last stream.
  absl::Duration unsubscribe_linger = absl::Seconds(5);
  // Consume: how the group spreads partitions over its members.
  AssignmentStrategy assignment_strategy = AssignmentStrategy::kCooperativeSticky;
  // Consume: static group membership (KIP-345) when set, for example the pod name: a sidecar
  // that restarts within the session timeout gets its partitions back without a rebalance.
  std::string group_instance_id;
  // Consume: how a subscription's records are spread over its streams.
  Ordering ordering = Ordering::kKey;
  // Consume: a stream holding records that sends no ack or nack this long is ended.
  absl::Duration client_inactivity_timeout = absl::Seconds(60);
  // Consume: Kafka unreachable this long ends a subscription's streams with UNAVAILABLE.
  absl::Duration kafka_unavailable_timeout = absl::Seconds(60);
  // On SIGTERM: how long Kafka gets to acknowledge what was accepted, and apps get to ack
  // what is in flight.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // After the grace: how long answers already decided get to reach the apps.
  absl::Duration shutdown_finish_timeout = absl::Seconds(2);
  // Embedded cluster only: brokers, and partitions of each topic created on first use.
  int embedded_brokers = 3;
  int embedded_partitions = 6;
};

inline constexpr char kEmbeddedBrokers[] = "embedded";

// One subscription's memory budget, split in one place: its own queue (records fetched and
// waiting for the app, at which its partitions pause) and librdkafka's prefetch (where
// librdkafka stops fetching by itself), half of it each way. The subscription drains the
// prefetch into its queue as it comes, so the prefetch fills only when the app falls behind or
// fetch responses outrun the poll; a stalled app holds both full.
struct BufferBudget {
  size_t queue_records;
  size_t queue_bytes;
  int prefetch_records;  // queued.min.messages
  int prefetch_kbytes;   // queued.max.messages.kbytes
};
BufferBudget SplitBufferBudget(const SidecarConfig& config);

// Checks every field; the error is INVALID_ARGUMENT and names the flag (`--listen`, ...) and
// the accepted range.
absl::Status ValidateConfig(const SidecarConfig& config);

// Checks an address flag's value: `host:port` (port 0..65535; IPv6 hosts in brackets) or,
// when `unix_ok`, `unix:/absolute/path`. Errors name `flag`.
absl::Status ValidateListenAddress(const std::string& listen, absl::string_view flag = "listen",
                                   bool unix_ok = true);

// True for a unix socket or a host:port whose host is loopback (localhost, 127.x.x.x, ::1).
bool IsLocalAddress(const std::string& listen);

// The producer's `message.max.bytes` from `kafka_settings` (the last one wins), or librdkafka's
// default, 1000000, when it is unset or not a number (librdkafka refuses such a value anyway).
int64_t MessageMaxBytes(const broker::KafkaSettings& kafka_settings);

// The largest gRPC message the server reads: twice `message_max_bytes` plus 1 MiB, and at least
// 16 MiB (capped at 2 GiB - 1, gRPC's most). Any record Kafka could take fits in a request with
// room to spare, and so does a record several times too large for Kafka: it reaches the sidecar
// and is refused with INVALID_ARGUMENT in its own response while the stream goes on. A message
// larger than this (a record, or a whole ProduceBatch) ends its call with RESOURCE_EXHAUSTED.
int MaxReceiveMessageBytes(int64_t message_max_bytes);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_CONFIG_H_
