#ifndef KAFKA_SIDECAR_BROKER_TOPIC_CREATOR_H_
#define KAFKA_SIDECAR_BROKER_TOPIC_CREATOR_H_

#include "absl/strings/string_view.h"

namespace kafka_sidecar::broker {

// Makes sure a topic exists before the sidecar first uses it (the embedded cluster only; a
// real cluster's topics are the operator's). Thread-safe.
class TopicCreator {
 public:
  virtual ~TopicCreator() = default;
  virtual void EnsureTopic(absl::string_view topic) = 0;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_TOPIC_CREATOR_H_
