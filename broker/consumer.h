#ifndef KAFKA_SIDECAR_BROKER_CONSUMER_H_
#define KAFKA_SIDECAR_BROKER_CONSUMER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/topic_partition.h"

namespace kafka_sidecar::broker {

struct Header {
  std::string key;
  std::string value;
};

// A record read from Kafka, owned.
struct Message {
  TopicPartition tp;
  int64_t offset = -1;
  std::optional<std::string> key;  // nullopt: a null key
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;
};

// Told about group rebalances. Runs inside GroupConsumer::Poll (or Close), on the thread
// that calls it.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // `partitions` are now this member's; fetching starts from their committed offsets.
  virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
  // `partitions` are about to go to another member: the last moment to commit them
  // (CommitSync). `lost` means the group already gave them away (the session expired): a
  // commit would fail.
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions, bool lost) = 0;
};

// The outcome of one asynchronous commit.
using CommitCallback =
    std::function<void(const absl::Status& status, const std::vector<PartitionOffset>& offsets)>;

// Poll's error when Kafka refuses to let the member join because the group's other members
// offer no partition assignment strategy in common with it (Kafka's INCONSISTENT_GROUP_PROTOCOL):
// FAILED_PRECONDITION carrying, under this type URL, the strategies the member offered
// (partition.assignment.strategy) as text. Kafka refuses every try for as long as the group has
// those members.
inline constexpr absl::string_view kGroupProtocolMismatchPayload =
    "type.googleapis.com/kafka_sidecar.GroupProtocolMismatch";

// `status` (FAILED_PRECONDITION) marked as such a refusal of a member offering `offered`.
inline absl::Status GroupProtocolMismatchError(absl::Status status, absl::string_view offered) {
  status.SetPayload(kGroupProtocolMismatchPayload, absl::Cord(offered));
  return status;
}

// The strategies the member offered when `status` is such a refusal; nullopt otherwise.
inline std::optional<std::string> GroupProtocolMismatch(const absl::Status& status) {
  if (!absl::IsFailedPrecondition(status)) return std::nullopt;
  const auto offered = status.GetPayload(kGroupProtocolMismatchPayload);  // absl::optional
  if (!offered.has_value()) return std::nullopt;
  return std::string(*offered);
}

// One member of a Kafka consumer group. Not thread-safe: one thread makes every call.
class GroupConsumer {
 public:
  virtual ~GroupConsumer() = default;

  // Joins the group for `topics`. Rebalances reach `listener` (which must outlive the
  // consumer) inside Poll.
  virtual absl::Status Subscribe(const std::vector<std::string>& topics,
                                 RebalanceListener* listener) = 0;

  // Serves group events (rebalances, commit results), then appends to `out` at most `max` of
  // the records the client has fetched. When there are none, waits up to `timeout` for the
  // first record or event (or Wake) and then takes what else is there without waiting: a poll
  // never waits for a full batch. With `max` 0 it serves events only (waiting for one), leaving
  // fetched records in the client. Returns OK, or the error Kafka reported: NOT_FOUND (a
  // subscribed topic does not exist), PERMISSION_DENIED, UNAUTHENTICATED and
  // FAILED_PRECONDITION (the client hit a fatal error, such as a fenced static member, or Kafka
  // refused the JoinGroup for want of a common assignment strategy: see
  // GroupProtocolMismatch) are permanent; UNAVAILABLE (brokers unreachable) is transient and
  // the client keeps retrying.
  // Records may be appended even when an error is returned.
  virtual absl::Status Poll(absl::Duration timeout, size_t max, std::vector<Message>& out) = 0;

  // Makes a Poll that is waiting return now (or the next one, if none is). Any thread.
  virtual void Wake() = 0;

  // Records fetched by the client and not yet returned by Poll.
  virtual size_t Prefetched() = 0;

  // Stops or restarts fetching from `partitions` (records already fetched may still come).
  virtual void Pause(const std::vector<TopicPartition>& partitions) = 0;
  virtual void Resume(const std::vector<TopicPartition>& partitions) = 0;

  // Commits `offsets` (each the next offset to read) without waiting; `done` runs inside a
  // later Poll with the outcome.
  virtual void CommitAsync(const std::vector<PartitionOffset>& offsets, CommitCallback done) = 0;
  // Commits and waits for the outcome.
  virtual absl::Status CommitSync(const std::vector<PartitionOffset>& offsets) = 0;

  // Asks a broker for cluster metadata, waiting up to `timeout`: OK when Kafka answers.
  virtual absl::Status CheckReachable(absl::Duration timeout) = 0;

  // The last high watermark (log end offset) the client saw for each partition, -1 where it
  // saw none yet. No request: what fetch responses said.
  virtual std::vector<int64_t> HighWatermarks(const std::vector<TopicPartition>& partitions) = 0;

  // How Close ends the membership.
  enum class Departure {
    // Leave the group now, static member or not: the partitions move at once (the app stopped
    // consuming).
    kLeave,
    // The process is stopping and may come back: a static member (group.instance.id) keeps its
    // place until its session times out, so a restart gets its partitions back without a
    // rebalance. A dynamic member leaves.
    kRestart,
  };

  // Ends the membership as `departure` says, serving group events (commit results, the final
  // revocation through the listener) for up to `timeout`; past it, gives up (the group notices
  // the member gone after its session timeout). Poll must not be called after. Destroying a
  // consumer without Close does not leave the group.
  virtual void Close(absl::Duration timeout, Departure departure) = 0;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_CONSUMER_H_
