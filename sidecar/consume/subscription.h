#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/consumer.h"
#include "broker/offset_tracker.h"
#include "broker/producer.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/metrics.h"
#include "sidecar/consume/consumer_stream.h"
#include "sidecar/consume/dispatcher.h"
#include "sidecar/consume/subscription_policies.h"

// The consume pipeline: one Subscription per (group, topics), shared by the app's streams.
//
//   Kafka <-- fetch, commit --> broker::GroupConsumer           (librdkafka, in //broker)
//                                 |  ^
//                   Poll: records |  | Pause/Resume, Commit      (the poll thread only)
//                   and rebalances|  |
//                                 v  |
//   +----------------------- Subscription -----------------------+
//   | broker::OffsetTracker: every record from fetch to ack       |
//   | Dispatcher: routes by key or partition over a hash ring of  |
//   |   the streams; a route's records go to one stream at a time |
//   | policies (subscription_policies.h), each on the Clock:      |
//   |   CommitSchedule  FlowControl  KafkaLiveness  Linger        |
//   +-------------------------------------------------------------+
//           | RecordBatches within max_in_flight   ^ Ack / Nack
//           v                                      |
//     ConsumerStream x N  --  rpc/ConsumeReactor: one gRPC Consume stream each

namespace kafka_sidecar::sidecar {

// A subscription at one moment, for the metrics page.
struct SubscriptionStats {
  std::string group;
  std::string topics;  // sorted, comma-separated: a group may have several topic sets
  size_t streams = 0;
  size_t in_flight = 0;  // sent to apps, not yet acked
  size_t buffered = 0;   // fetched, waiting to be sent
  size_t assigned_partitions = 0;
  size_t paused_partitions = 0;
  // Per assigned partition: records between the last committed offset and the log end
  // (librdkafka's last seen high watermark), where both are known.
  std::vector<std::pair<broker::TopicPartition, int64_t>> lag;
  // The time lag: how long ago the oldest record fetched and not yet acked was written (its
  // Kafka timestamp against this clock; zero when every fetched record is acked, or when the
  // records carry no timestamp). It grows while an app stalls and falls as it acks.
  absl::Duration oldest_unacked_age = absl::ZeroDuration();
  // Nacked records waiting for their retry; records given up on whose dead-letter write is
  // under way; records written to the dead-letter topic since the subscription started.
  size_t waiting_retry = 0;
  size_t dead_lettering = 0;
  size_t dead_lettered = 0;
};

struct SubscriptionOptions {
  std::string group;
  std::vector<std::string> topics;
  // This sidecar's index among its memberships of `group` (0 unless two topic sets share one
  // group); names the static member.
  int member = 0;
  // How often acked offsets are committed; failed commits back off from here.
  absl::Duration commit_interval = absl::Seconds(1);
  absl::Duration max_commit_backoff = absl::Seconds(30);
  // Records (and bytes of them) fetched and waiting in the subscription's queues, not yet in
  // flight, at which every partition is paused; they resume at a quarter of it. The client's
  // own prefetch is drained into these queues as long as they have room.
  size_t max_buffered_records = 100000;
  size_t max_buffered_bytes = size_t{64} << 20;
  // How records are spread over the streams, and the size of one RecordBatch message.
  Dispatcher::Options dispatch;
  // A stream holding in-flight records that sends no ack or nack for this long is ended
  // (DEADLINE_EXCEEDED) and its records go to the other streams.
  absl::Duration inactivity_timeout = absl::Seconds(60);
  // How long one poll of Kafka waits when nothing comes (records, group events, and room in
  // the queues each end the wait at once): the resolution of the timers below.
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // Kafka unreachable this long ends the subscription's streams with UNAVAILABLE. Without
  // records or commits for a tenth of it, the subscription asks Kafka for metadata to know.
  absl::Duration kafka_unavailable_timeout = absl::Seconds(60);
  // How long the subscription outlives its last stream before it leaves the group.
  absl::Duration linger = absl::Seconds(5);
  // How long leaving the group (final commit included) may take.
  absl::Duration close_timeout = absl::Seconds(5);
  // A failed dead-letter write is tried again after this, doubling up to the max.
  absl::Duration dead_letter_retry = absl::Milliseconds(200);
  absl::Duration max_dead_letter_retry = absl::Seconds(10);
};

// One Kafka consumer-group membership for (group, topics), shared by the app's streams that
// subscribe to it. It polls Kafka on a thread of its own, tracks every record from fetch to
// ack (broker::OffsetTracker), sends records to streams in batches within each stream's
// in-flight limit, commits what was acked every commit interval, and pauses its partitions
// while too many records wait.
//
// Ordering and handoffs between streams: see Dispatcher.
//
// Nacked records follow the delivery policy (options.dispatch.policy): a retry waits for its
// backoff, and a record given up on is written to the dead-letter topic through
// `dead_letters` (idempotent, acks=all) and counts as acked only once Kafka has it; a failed
// write is retried with backoff, never skipped.
//
// Threads: Attach, Detach, Ack, Nack and Close may be called from any thread; the consumer
// is used only by the poll thread (others only Wake it). One mutex guards the state. Batches
// are made under it and handed to the streams after it is released, by one thread at a time
// (the one that finds the outbox idle), so gRPC's serialization never runs under the lock;
// End is called with it held (see ConsumerStream).
class Subscription final : private broker::RebalanceListener {
 public:
  // `dead_letters` (which must outlive the subscription's writes, not the subscription) may be
  // null when the policy has no dead-letter topic.
  Subscription(SubscriptionOptions options, std::unique_ptr<broker::GroupConsumer> consumer,
               broker::Producer* dead_letters, Clock& clock, ConsumeMetrics& metrics);
  // Closes (as Close with no grace) if still open.
  ~Subscription() override;

  // Joins the group and starts polling. The consumer's error when it cannot subscribe.
  absl::Status Start();

  // Adds a stream with its in-flight limit. False when the subscription is closing (then the
  // caller needs a new one).
  bool Attach(uint64_t stream_id, ConsumerStream* stream, uint32_t max_in_flight);

  // Removes a stream: its in-flight records go back for redelivery, and the subscription never
  // calls it again once Detach returns. Unknown ids are ignored.
  void Detach(uint64_t stream_id);

  // Acks or nacks by delivery id. Unknown and stale ids are ignored and counted. A nack with
  // `dead_letter` gives the records up at once (with a dead-letter topic); `reason` goes into
  // the dead-letter records' headers.
  void Ack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids);
  void Nack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids, bool dead_letter = false,
            const std::string& reason = "");

  // Stops sending records (what is in flight may still be acked).
  void BeginDrain();

  // Stops sending records, waits up to `grace` for the apps to ack what is in flight,
  // commits, ends the membership as `departure` says and ends every stream with `status`.
  // Idempotent. Close is Stop then Join; many subscriptions leave their groups in parallel
  // when each is stopped first. (Stopping by itself, after the linger or on a permanent
  // error, the subscription leaves.)
  void Close(absl::Duration grace, const absl::Status& status,
             broker::GroupConsumer::Departure departure);
  void Stop(absl::Duration grace, const absl::Status& status,
            broker::GroupConsumer::Departure departure);
  void Join();

  // Waits up to `timeout` for closed() (false if it did not come).
  bool AwaitClosed(absl::Duration timeout);

  const SubscriptionOptions& options() const { return options_; }
  SubscriptionStats Stats() const;

  // False once it is leaving its group (Attach refuses from then on).
  bool accepting() const;

  // True once the subscription has ended its membership and released its consumer (after
  // Close, a permanent Kafka error, or the linger after its last stream).
  bool closed() const;

 private:
  // What the poll thread does with the consumer after a step, outside the lock.
  struct Plan {
    std::vector<broker::TopicPartition> pause;
    std::vector<broker::TopicPartition> resume;
    std::vector<broker::PartitionOffset> commit;
    // Partitions whose log end offsets to read from the client (for the lag).
    std::vector<broker::TopicPartition> watermarks;
    // Ask Kafka for metadata, waiting up to this long (zero: no check).
    absl::Duration check_reachable;
    // Dead-letter writes to try again.
    std::vector<std::pair<uint64_t, DeadLetterRecord>> dead_letters;
    bool stop = false;
  };

  // Delivery reports of dead-letter writes reach the subscription through this; the producer
  // may report after the subscription is gone, which the destructor tells it.
  struct Inbox {
    absl::Mutex mu;
    Subscription* subscription ABSL_GUARDED_BY(mu) = nullptr;
  };
  // A dead-letter write that failed, waiting to be tried again.
  struct FailedWrite {
    absl::Time due;
    uint32_t failures = 0;
  };

  void OnAssigned(const std::vector<broker::TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<broker::TopicPartition>& partitions, bool lost) override;

  void PollLoop();
  Plan Step(std::vector<broker::Message>& polled, const absl::Status& status, size_t prefetched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnCommitted(const absl::Status& status, const std::vector<broker::PartitionOffset>& offsets);

  // The dead-letter record for held record `ticket`, or nullopt once it was dropped.
  std::optional<DeadLetterRecord> DeadLetterFor(uint64_t ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands a dead-letter record to the producer. Without mu_: the report may come inline.
  void WriteDeadLetter(uint64_t ticket, const DeadLetterRecord& record) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDeadLetterWritten(uint64_t ticket, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes a stream (its records go to the others) and keeps the gauges right. Waits while
  // a batch is being handed to it. `gone_at` is when it was judged gone: the linger starts then.
  void RemoveStream(uint64_t stream_id, absl::Time gone_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes batches for the streams; true when the caller is to send them (SendOutbox) once it
  // has released the lock.
  bool Dispatch(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the outbox's batches to their streams until it is empty.
  void SendOutbox() ABSL_LOCKS_EXCLUDED(mu_);
  // Records the next poll may take: none when the queues are full.
  size_t Room() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the poll thread's wait once the queue has room again, or is down to where paused
  // partitions resume.
  void MaybeWakePoller() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends every stream with `status` and forgets them.
  void EndStreams(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SubscriptionOptions options_;
  const std::string log_group_;  // the group as it goes into logs and messages: PrintableName
  // Used by the poll thread only, which destroys it after leaving the group.
  std::unique_ptr<broker::GroupConsumer> consumer_;
  broker::Producer* const dead_letters_;
  const std::shared_ptr<Inbox> inbox_;
  Clock& clock_;
  ConsumeMetrics& metrics_;
  absl::Mutex join_mu_;  // Join may be called from several threads
  std::thread poller_ ABSL_GUARDED_BY(join_mu_);

  mutable absl::Mutex mu_;
  broker::OffsetTracker tracker_ ABSL_GUARDED_BY(mu_);
  Dispatcher dispatcher_ ABSL_GUARDED_BY(mu_);
  // Batches made and not yet handed to their streams; sending_ while a thread hands them
  // over, sending_to_ the stream it is handing one to right now (0: none).
  std::deque<Dispatcher::Outgoing> outbox_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sending_to_ ABSL_GUARDED_BY(mu_) = 0;
  // The poll thread waits for room, or for the queue to go down to where paused partitions
  // resume: an ack that gets it there wakes it.
  bool poller_waits_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<broker::TopicPartition> assigned_ ABSL_GUARDED_BY(mu_);
  // Per assigned partition: the log end offset librdkafka last saw. For the lag (from the last
  // commit, or from where fetching started).
  absl::flat_hash_map<broker::TopicPartition, int64_t> high_watermarks_ ABSL_GUARDED_BY(mu_);
  absl::Time next_watermarks_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<broker::TopicPartition> to_pause_ ABSL_GUARDED_BY(mu_);  // assigned while paused
  CommitSchedule commits_ ABSL_GUARDED_BY(mu_);
  KafkaLiveness kafka_ ABSL_GUARDED_BY(mu_);
  FlowControl flow_ ABSL_GUARDED_BY(mu_);
  Linger linger_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // send nothing more
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // the poll thread is to leave the group
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  broker::GroupConsumer::Departure departure_ ABSL_GUARDED_BY(mu_) =
      broker::GroupConsumer::Departure::kLeave;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Dead-letter writes: the nack's reason per held record, and those waiting to be tried again.
  absl::flat_hash_map<uint64_t, std::string> dead_letter_reasons_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, FailedWrite> failed_writes_ ABSL_GUARDED_BY(mu_);
  size_t dead_lettered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_H_
