#ifndef KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_
#define KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "broker/embedded_cluster.h"
#include "broker/producer.h"
#include "broker/topic_creator.h"

namespace kafka_sidecar::broker {

// The embedded cluster's topic policy: each topic is created with `partitions` partitions the
// first time the sidecar names it. (The mock brokers would otherwise create it with their own
// fixed partition count, or not at all for consumers.) Thread-safe.
class EmbeddedTopics final : public TopicCreator {
 public:
  EmbeddedTopics(EmbeddedCluster& cluster, int partitions)
      : cluster_(cluster), partitions_(partitions) {}

  void EnsureTopic(absl::string_view topic) override;

 private:
  EmbeddedCluster& cluster_;
  const int partitions_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> known_ ABSL_GUARDED_BY(mu_);
};

// Ensures each record's topic through `creator`, then hands the record on to `inner`.
class TopicCreatingProducer final : public Producer {
 public:
  TopicCreatingProducer(TopicCreator& creator, std::unique_ptr<Producer> inner)
      : creator_(creator), inner_(std::move(inner)) {}

  void Produce(const RecordView& record, DeliveryCallback done) override {
    if (!record.topic.empty()) creator_.EnsureTopic(record.topic);
    inner_->Produce(record, std::move(done));
  }
  void ProduceBatch(absl::Span<const RecordView> records, BatchDeliverySink& sink) override {
    absl::string_view last;
    for (const RecordView& record : records) {
      if (record.topic.empty() || record.topic == last) continue;
      creator_.EnsureTopic(record.topic);
      last = record.topic;
    }
    inner_->ProduceBatch(records, sink);
  }
  void SendNow() override { inner_->SendNow(); }
  absl::Status Drain(absl::Duration timeout) override { return inner_->Drain(timeout); }
  absl::Status CheckReachable(absl::Duration timeout) override {
    return inner_->CheckReachable(timeout);
  }

 private:
  TopicCreator& creator_;
  const std::unique_ptr<Producer> inner_;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_
