#ifndef KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_
#define KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "broker/embedded_cluster.h"
#include "broker/producer.h"

namespace kafka_sidecar::broker {

// For the embedded cluster: creates each topic with `partitions` partitions the first time a
// record names it, then hands the record on to `inner`. (The mock brokers would otherwise
// create it with their own fixed partition count.) Thread-safe.
class TopicCreatingProducer final : public Producer {
 public:
  TopicCreatingProducer(EmbeddedCluster& cluster, int partitions, std::unique_ptr<Producer> inner);

  void Produce(const RecordView& record, DeliveryCallback done) override;
  absl::Status Drain(absl::Duration timeout) override { return inner_->Drain(timeout); }

 private:
  EmbeddedCluster& cluster_;
  const int partitions_;
  const std::unique_ptr<Producer> inner_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> known_topics_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_TOPIC_CREATING_PRODUCER_H_
