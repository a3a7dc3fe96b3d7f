#include "broker/topic_creating_producer.h"

#include <glog/logging.h>

namespace kafka_sidecar::broker {

void EmbeddedTopics::EnsureTopic(absl::string_view topic) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (known_.contains(topic)) return;
  }
  absl::MutexLock lock(&mu_);
  if (!known_.emplace(topic).second) return;
  absl::Status created = cluster_.CreateTopic(topic, partitions_);
  if (created.ok()) {
    LOG(INFO) << "[embedded] created topic [" << topic << "] with " << partitions_
              << " partitions";
  } else if (!absl::IsAlreadyExists(created)) {
    LOG(WARNING) << "[embedded] " << created;
  }
}

}  // namespace kafka_sidecar::broker
