#ifndef KAFKA_SIDECAR_BROKER_RDKAFKA_CONSUMER_H_
#define KAFKA_SIDECAR_BROKER_RDKAFKA_CONSUMER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "broker/consumer.h"
#include "broker/kafka_config.h"
#include "broker/rdkafka_handle.h"

namespace kafka_sidecar::broker {

struct RdKafkaConsumerOptions {
  std::string bootstrap_servers;
  std::string group;
  // Records librdkafka prefetches before it stops fetching (queued.min.messages).
  int max_prefetch_records = 50000;
  // And the bytes of them (queued.max.messages.kbytes).
  int max_prefetch_kbytes = 16384;
  // Extra librdkafka settings (--kafka_config), applied after the defaults: manual commits,
  // auto.offset.reset=earliest, cooperative-sticky assignment, a bounded prefetch.
  KafkaSettings settings;
};

// GroupConsumer on librdkafka's high-level consumer. Not thread-safe (see GroupConsumer).
//
// Records and events travel on separate queues: every assigned partition's queue is forwarded
// to `records_`, so group events (on the consumer queue) are served on every Poll while the
// fetched records wait in librdkafka until the caller has room for them. librdkafka then stops
// fetching by itself at queued.min.messages / queued.max.messages.kbytes, and 2.0.2 looks again
// only up to a second later: Poll restarts fetching as soon as it has emptied the queue.
class RdKafkaConsumer final : public GroupConsumer {
 public:
  // INVALID_ARGUMENT when librdkafka refuses a setting or the configuration.
  static absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> Create(RdKafkaConsumerOptions options);
  ~RdKafkaConsumer() override;

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener* listener) override;
  absl::Status Poll(absl::Duration timeout, size_t max, std::vector<Message>& out) override;
  void Wake() override;
  size_t Prefetched() override;
  void Pause(const std::vector<TopicPartition>& partitions) override;
  void Resume(const std::vector<TopicPartition>& partitions) override;
  void CommitAsync(const std::vector<PartitionOffset>& offsets, CommitCallback done) override;
  absl::Status CommitSync(const std::vector<PartitionOffset>& offsets) override;
  absl::Status CheckReachable(absl::Duration timeout) override;
  std::vector<int64_t> HighWatermarks(const std::vector<TopicPartition>& partitions) override;
  void Close(absl::Duration timeout, Departure departure) override;

  // True while librdkafka 2.0.2 would abort destroying this client: the group answered its
  // JoinGroup with the cooperative-sticky assignor but not yet its SyncGroup (see Close).
  bool BetweenJoinAndSync();

 private:
  explicit RdKafkaConsumer(std::string group) : group_(std::move(group)) {}
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  // librdkafka's callback for an event on the empty event queue; `opaque` is records_.
  static void OnEvent(rd_kafka_t* rk, void* opaque);

  // Leaves the group as a static member: unsubscribes, serving events until the LeaveGroup
  // went out or `deadline` passes.
  void Unsubscribe(absl::Time deadline);


  // Seeks the assigned, unpaused partitions of `partitions` to where the app stands (the next
  // offset after the last record Poll returned), which makes their broker threads look at
  // fetching now. Records of them still queued in librdkafka are dropped (fetched again).
  void SeekToPositions(rd_kafka_topic_partition_list_t* partitions, const char* why);

  // Turns one librdkafka message into `out` (records) or a status (errors).
  absl::Status Take(rd_kafka_message_t* message, std::vector<Message>& out);

  const std::string group_;
  RdKafkaPtr rk_;
  rd_kafka_queue_t* events_ = nullptr;   // the consumer queue; owned
  rd_kafka_queue_t* records_ = nullptr;  // where assigned partitions' records go; owned
  std::vector<rd_kafka_message_t*> batch_;  // Poll's message array, reused
  // queued.min.messages: records_ holding this many stops every partition's fetching.
  size_t fetch_stop_records_ = 1;
  size_t last_taken_ = 0;  // records the previous Poll took
  // records_ may have reached fetch_stop_records_ since fetching was last restarted.
  bool fetching_may_have_stopped_ = false;
  absl::flat_hash_set<TopicPartition> paused_;  // by Pause, until Resume
  // Where SeekToPositions last sent each assigned partition. librdkafka reports no position
  // for a partition after a seek until the app takes one of its records; this is it then.
  absl::flat_hash_map<TopicPartition, int64_t> sought_;
  RebalanceListener* listener_ = nullptr;
  bool static_member_ = false;  // group.instance.id is set
  bool cooperative_ = true;     // partition.assignment.strategy is cooperative-sticky
  std::string strategy_;        // partition.assignment.strategy: what this member offers
  bool closed_ = false;
  bool left_group_ = false;  // Close completed: destroying may skip the consumer close
  // The group gave this member an assignment at least once (its SyncGroup was answered).
  bool synced_ = false;
  // Destroying the client would abort the process (see Close): it is left to the OS.
  bool doomed_ = false;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_RDKAFKA_CONSUMER_H_
