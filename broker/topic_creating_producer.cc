#include "broker/topic_creating_producer.h"

#include <glog/logging.h>

#include <utility>

namespace kafka_sidecar::broker {

TopicCreatingProducer::TopicCreatingProducer(EmbeddedCluster& cluster, int partitions,
                                             std::unique_ptr<Producer> inner)
    : cluster_(cluster), partitions_(partitions), inner_(std::move(inner)) {}

void TopicCreatingProducer::Produce(const RecordView& record, DeliveryCallback done) {
  bool known;
  {
    absl::ReaderMutexLock lock(&mu_);
    known = known_topics_.contains(record.topic);
  }
  if (!known && !record.topic.empty()) {
    absl::MutexLock lock(&mu_);
    if (known_topics_.emplace(record.topic).second) {
      absl::Status created = cluster_.CreateTopic(record.topic, partitions_);
      if (created.ok()) {
        LOG(INFO) << "[embedded] created topic [" << record.topic << "] with " << partitions_
                  << " partitions";
      } else if (!absl::IsAlreadyExists(created)) {
        LOG(WARNING) << "[embedded] " << created;
      }
    }
  }
  inner_->Produce(record, std::move(done));
}

}  // namespace kafka_sidecar::broker
