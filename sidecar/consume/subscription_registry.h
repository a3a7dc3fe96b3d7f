#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_REGISTRY_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_REGISTRY_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "broker/consumer.h"
#include "broker/producer.h"
#include "broker/topic_creator.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/metrics.h"
#include "sidecar/consume/subscription.h"

namespace kafka_sidecar::sidecar {

// Makes the Kafka consumer of one group member. `member` is this sidecar's index among its
// open memberships of `group` (0 unless two topic sets share the group): static members need
// one id each.
using ConsumerFactory = std::function<absl::StatusOr<std::unique_ptr<broker::GroupConsumer>>(
    const std::string& group, int member)>;

// The open subscriptions, one per (group, topics): the first stream to subscribe creates it
// (joining the group), later ones share it; a subscription leaves the group by itself after
// its linger without streams. Thread-safe.
class SubscriptionRegistry {
 public:
  // `defaults` gives every option but group, topics and the delivery policy. At most
  // `max_subscriptions` are held at once, counting those still leaving their groups.
  // `dead_letters` writes dead-letter records (null: no policy may name a dead-letter topic).
  // `topics` may be null; when set, each subscribed topic (and dead-letter topic) is ensured
  // through it first (the embedded cluster).
  SubscriptionRegistry(SubscriptionOptions defaults, size_t max_subscriptions,
                       ConsumerFactory factory, broker::Producer* dead_letters,
                       broker::TopicCreator* topics, Clock& clock, ConsumeMetrics& metrics);
  // Closes every subscription at once (no grace).
  ~SubscriptionRegistry();

  // Attaches `stream` to the subscription for (group, topics), creating it with `policy` when
  // needed. UNAVAILABLE once closing; FAILED_PRECONDITION, naming the request's field, when
  // the subscription runs with another policy (every stream of it shares one);
  // RESOURCE_EXHAUSTED when a new one is needed and max_subscriptions are held; otherwise the
  // consumer's error when it cannot be made.
  absl::StatusOr<std::shared_ptr<Subscription>> Attach(const std::string& group,
                                                       const std::vector<std::string>& topics,
                                                       const DeliveryPolicy& policy,
                                                       uint64_t stream_id, ConsumerStream* stream,
                                                       uint32_t max_in_flight);

  // A new stream id, unique in this process.
  uint64_t NextStreamId();

  // Refuses new streams and stops sending records everywhere (acks still count).
  void BeginDrain();

  // Stops sending records everywhere, gives the apps `grace` to ack what is in flight, then
  // commits, ends every membership (static members keep their place: the process stops) and
  // ends every stream with `status`.
  void CloseAll(absl::Duration grace, const absl::Status& status);

  // Subscriptions not yet closed.
  size_t open_subscriptions();
  // Each open subscription's figures, for the metrics page.
  std::vector<SubscriptionStats> Stats();

  // Waits up to `timeout` until every subscription has left its group, and releases those
  // that did (their threads end). True when none is open.
  bool AwaitIdle(absl::Duration timeout);

 private:
  // Takes the closed subscriptions out of the map, for the caller to release after unlocking.
  std::vector<std::shared_ptr<Subscription>> TakeClosed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SubscriptionOptions defaults_;
  const size_t max_subscriptions_;
  const ConsumerFactory factory_;
  broker::Producer* const dead_letters_;
  broker::TopicCreator* const topics_;
  Clock& clock_;
  ConsumeMetrics& metrics_;

  absl::Mutex mu_;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> next_stream_id_{1};
  std::map<std::string, std::shared_ptr<Subscription>> subscriptions_ ABSL_GUARDED_BY(mu_);
  // Memberships still leaving their group after a new one took their key: released (joined)
  // once closed, never on the gRPC thread that replaced them.
  std::vector<std::shared_ptr<Subscription>> departing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_REGISTRY_H_
