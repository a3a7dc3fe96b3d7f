#ifndef KAFKA_SIDECAR_TESTING_KAFKA_TEST_CLIENT_H_
#define KAFKA_SIDECAR_TESTING_KAFKA_TEST_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Plain librdkafka clients for tests and benchmarks. They use librdkafka directly, not the
// project's broker/ code, so that what the sidecar wrote is checked by an independent client.

namespace kafka_sidecar::testing {

struct ConsumedRecord {
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;  // nullopt: null key
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Reads `topic` from the beginning of every partition (no consumer group) until `count`
// records have arrived or `timeout` passes. DEADLINE_EXCEEDED names how many arrived.
absl::StatusOr<std::vector<ConsumedRecord>> ReadTopic(const std::string& bootstrap,
                                                      const std::string& topic, size_t count,
                                                      absl::Duration timeout);

// Produces `count` records of `value_size` bytes to `topic` (idempotent, acks=all, the
// sidecar's settings; keys key-0..key-999 in turn, partitions by key, or all to `partition`
// when it is 0 or more) and waits for every delivery report. Returns the time from the first
// produce to the last report; an error when a record failed.
absl::StatusOr<absl::Duration> ProduceDirect(const std::string& bootstrap,
                                             const std::string& topic, int64_t count,
                                             size_t value_size, int32_t partition = -1);

// The sum over `topic`'s partitions of the log end offset: how many records it holds (when
// none was ever deleted).
absl::StatusOr<int64_t> CountRecords(const std::string& bootstrap, const std::string& topic,
                                     int partitions);

// Reads `count` records of `topic` from the beginning of every partition with a plain
// librdkafka consumer (no group, no commits). Returns the time from the first record to the
// last.
absl::StatusOr<absl::Duration> ConsumeDirect(const std::string& bootstrap,
                                             const std::string& topic, int64_t count);

// The offsets `group` has committed for partitions 0..partitions-1 of `topic` (-1 where none
// was), read by a client that does not join the group.
absl::StatusOr<std::vector<int64_t>> CommittedOffsets(const std::string& bootstrap,
                                                      const std::string& group,
                                                      const std::string& topic, int partitions);

// The log end offset of each partition 0..partitions-1 of `topic`.
absl::StatusOr<std::vector<int64_t>> EndOffsets(const std::string& bootstrap,
                                                const std::string& topic, int partitions);

// The number of brokers the cluster's metadata lists (one request, up to `timeout`).
absl::StatusOr<int> BrokerCount(const std::string& bootstrap, absl::Duration timeout);

// A consumer group as its coordinator describes it (DescribeGroups).
struct GroupDescription {
  std::string state;     // "Stable", "PreparingRebalance", "CompletingRebalance", "Empty", ...
  std::string protocol;  // the assignment strategy the group chose ("range", ...)
  int members = 0;
};

// Asks the cluster to describe `group` (one request, up to `timeout`). For real brokers (the
// mock cluster does not answer DescribeGroups).
absl::StatusOr<GroupDescription> DescribeGroup(const std::string& bootstrap,
                                               const std::string& group, absl::Duration timeout);

// Creates `topic` through the admin API with `partitions` partitions of `replicas` copies each
// and the topic `config` given, then waits until its metadata shows every partition with a
// leader. For real brokers (the mock cluster creates topics through its own API).
absl::Status CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions,
                         int replicas,
                         const std::vector<std::pair<std::string, std::string>>& config = {});

// A plain librdkafka member of a consumer group (cooperative-sticky, no commits; the records it
// fetches are dropped), to see which partitions the group gives it. Closing leaves the group.
class GroupMember {
 public:
  static absl::StatusOr<std::unique_ptr<GroupMember>> Join(
      const std::string& bootstrap, const std::string& group, const std::string& topic,
      const std::vector<std::pair<std::string, std::string>>& settings = {});
  ~GroupMember();

  // Serves the group until this member holds exactly `count` partitions or `timeout` passes;
  // returns the partitions it holds then, sorted.
  std::vector<int32_t> WaitForAssignment(size_t count, absl::Duration timeout);

  // The partitions this member holds now (no wait).
  std::vector<int32_t> Assignment();

  // Serves the group until the client reports an error (an error event of the consumer, such
  // as a JoinGroup the broker refused) or `timeout` passes: the error's librdkafka name
  // ("INCONSISTENT_GROUP_PROTOCOL"), or nullopt. Records fetched meanwhile are dropped.
  std::optional<std::string> WaitForError(absl::Duration timeout);

  // Leaves the group (waits for it) and stops.
  void Close();

  // What librdkafka's rebalance callback saw (any thread may ask).
  struct Rebalances {
    std::atomic<int> count{0};  // assignments and revocations so far
    std::atomic<int64_t> last_unix_nanos{0};
  };
  int rebalances() const { return rebalances_->count.load(); }
  // When the latest assignment or revocation came; InfinitePast before the first.
  absl::Time last_rebalance() const {
    const int64_t nanos = rebalances_->last_unix_nanos.load();
    return nanos == 0 ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
  }

 private:
  GroupMember(void* rk, std::unique_ptr<Rebalances> rebalances)
      : rk_(rk), rebalances_(std::move(rebalances)) {}

  void* rk_;  // rd_kafka_t, kept out of this header
  std::unique_ptr<Rebalances> rebalances_;  // librdkafka's callback counts here
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_KAFKA_TEST_CLIENT_H_
