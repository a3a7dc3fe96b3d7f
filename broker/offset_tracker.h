#ifndef KAFKA_SIDECAR_BROKER_OFFSET_TRACKER_H_
#define KAFKA_SIDECAR_BROKER_OFFSET_TRACKER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "broker/topic_partition.h"

namespace kafka_sidecar::broker {

// The at-least-once rule for one partition: which offsets came in from Kafka, which were
// acked, and how far a commit may go. Offsets come in increasing (Kafka may skip some); acks
// come in any order. The committable offset is the lowest offset not yet acked, or one past
// the highest seen when all are acked: committing it never skips an unacked record.
// Not thread-safe.
class PartitionOffsets {
 public:
  // Records that `offset` came in, written at `timestamp_ms` (the record's timestamp; -1 when
  // unknown). Offsets at or below the highest seen are ignored (a re-fetch after a seek);
  // returns whether it was taken.
  bool Track(int64_t offset, int64_t timestamp_ms = -1);

  // Marks `offset` acked. False (and nothing changes) for an offset never tracked, or
  // already acked, or already below the committable point.
  bool Ack(int64_t offset);

  // The offset a commit may name (the next one to read), if any offset was ever tracked.
  std::optional<int64_t> Committable() const;

  // Tracked offsets not yet acked.
  size_t unacked() const { return unacked_; }

  // The first offset ever tracked (where fetching started), if any.
  std::optional<int64_t> first() const { return first_; }

  // The timestamp of the oldest tracked offset not yet acked, when there is one and its
  // timestamp is known.
  std::optional<int64_t> OldestUnackedTimestampMs() const {
    if (window_.empty() || window_.front().timestamp_ms < 0) return std::nullopt;
    return window_.front().timestamp_ms;
  }

 private:
  struct Entry {
    int64_t offset;
    int64_t timestamp_ms;
    bool acked;
  };
  // Tracked offsets from the lowest unacked up, increasing. The acked prefix is dropped as it
  // forms, so the front is always unacked (or the deque is empty).
  std::deque<Entry> window_;
  std::optional<int64_t> next_;  // one past the highest offset tracked
  std::optional<int64_t> first_;
  size_t unacked_ = 0;
};

// PartitionOffsets for every assigned partition, and what has been committed. Not thread-safe.
class OffsetTracker {
 public:
  // Starts tracking `tp` (on assignment). Keeps what it had if already tracked.
  void Add(const TopicPartition& tp);
  // Forgets `tp` (on revocation); later acks for it are stale.
  void Remove(const TopicPartition& tp);
  bool Tracks(const TopicPartition& tp) const { return partitions_.contains(tp); }

  // As PartitionOffsets; false for a partition not tracked.
  bool Track(const TopicPartition& tp, int64_t offset, int64_t timestamp_ms = -1);
  bool Ack(const TopicPartition& tp, int64_t offset);

  // The offsets of `tp`, or nullptr when it is not tracked. The pointer stays valid until
  // Remove(tp): a record can carry its partition's state from Track to Ack, found once.
  PartitionOffsets* Offsets(const TopicPartition& tp) {
    State* state = Find(tp);
    return state == nullptr ? nullptr : &state->offsets;
  }

  // For each tracked partition (or only `tp`), its committable offset where it is past what
  // was last committed: exactly what a commit may name now.
  std::vector<PartitionOffset> Committable() const;
  std::optional<PartitionOffset> Committable(const TopicPartition& tp) const;

  // Kafka confirmed these offsets: later Committable() calls start from them.
  void MarkCommitted(const std::vector<PartitionOffset>& offsets);

  // The last confirmed commit of `tp`, if any since it was added.
  std::optional<int64_t> Committed(const TopicPartition& tp) const;
  // Where fetching `tp` started since it was added (the group's commit then), if known.
  std::optional<int64_t> FirstTracked(const TopicPartition& tp) const;

  // Tracked and not acked, over all partitions.
  size_t unacked() const;
  // The earliest timestamp of an unacked record over all partitions (each partition's oldest
  // unacked record), when any is known.
  std::optional<int64_t> OldestUnackedTimestampMs() const;

 private:
  struct State {
    PartitionOffsets offsets;
    std::optional<int64_t> committed;
  };
  // The state of `tp`, or nullptr. Records and acks come in runs of one partition: the last
  // one found is checked first, which saves hashing the topic name for most of them.
  State* Find(const TopicPartition& tp);

  // Node map: states keep their address, so `last_` stays valid until its partition goes.
  absl::node_hash_map<TopicPartition, State> partitions_;
  const TopicPartition* last_tp_ = nullptr;
  State* last_ = nullptr;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_OFFSET_TRACKER_H_
