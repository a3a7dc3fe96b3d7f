#ifndef KAFKA_SIDECAR_BROKER_TOPIC_PARTITION_H_
#define KAFKA_SIDECAR_BROKER_TOPIC_PARTITION_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>

namespace kafka_sidecar::broker {

// One partition of one topic.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  friend bool operator==(const TopicPartition& a, const TopicPartition& b) {
    return a.partition == b.partition && a.topic == b.topic;
  }
  friend bool operator!=(const TopicPartition& a, const TopicPartition& b) { return !(a == b); }
  friend bool operator<(const TopicPartition& a, const TopicPartition& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
  friend std::ostream& operator<<(std::ostream& os, const TopicPartition& tp) {
    return os << tp.topic << "/" << tp.partition;
  }
};

// An offset in a partition; for commits, the next offset to read.
struct PartitionOffset {
  TopicPartition tp;
  int64_t offset = 0;

  friend bool operator==(const PartitionOffset& a, const PartitionOffset& b) {
    return a.offset == b.offset && a.tp == b.tp;
  }
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_TOPIC_PARTITION_H_
