#include "broker/offset_tracker.h"

#include <algorithm>

namespace kafka_sidecar::broker {

bool PartitionOffsets::Track(int64_t offset, int64_t timestamp_ms) {
  if (next_.has_value() && offset < *next_) return false;
  if (!first_.has_value()) first_ = offset;
  window_.push_back({offset, timestamp_ms, false});
  next_ = offset + 1;
  ++unacked_;
  return true;
}

bool PartitionOffsets::Ack(int64_t offset) {
  if (window_.empty() || offset < window_.front().offset) return false;
  // Offsets mostly come without gaps, so the entry is usually `offset - front` places on (acks
  // of several streams come out of order); Kafka may skip offsets (compaction, transactions),
  // then it is searched for.
  const uint64_t distance = static_cast<uint64_t>(offset - window_.front().offset);
  auto it = distance < window_.size() && window_[distance].offset == offset
                ? window_.begin() + static_cast<ptrdiff_t>(distance)
                : std::lower_bound(window_.begin(), window_.end(), offset,
                                   [](const Entry& e, int64_t o) { return e.offset < o; });
  if (it == window_.end() || it->offset != offset || it->acked) return false;
  it->acked = true;
  --unacked_;
  while (!window_.empty() && window_.front().acked) window_.pop_front();
  return true;
}

std::optional<int64_t> PartitionOffsets::Committable() const {
  if (!window_.empty()) return window_.front().offset;
  return next_;
}

void OffsetTracker::Add(const TopicPartition& tp) { partitions_.try_emplace(tp); }

void OffsetTracker::Remove(const TopicPartition& tp) {
  last_tp_ = nullptr;
  last_ = nullptr;
  partitions_.erase(tp);
}

OffsetTracker::State* OffsetTracker::Find(const TopicPartition& tp) {
  if (last_ != nullptr && *last_tp_ == tp) return last_;
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return nullptr;
  last_tp_ = &it->first;
  last_ = &it->second;
  return last_;
}

bool OffsetTracker::Track(const TopicPartition& tp, int64_t offset, int64_t timestamp_ms) {
  State* state = Find(tp);
  return state != nullptr && state->offsets.Track(offset, timestamp_ms);
}

bool OffsetTracker::Ack(const TopicPartition& tp, int64_t offset) {
  State* state = Find(tp);
  return state != nullptr && state->offsets.Ack(offset);
}

std::optional<int64_t> OffsetTracker::FirstTracked(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return std::nullopt;
  return it->second.offsets.first();
}

std::optional<PartitionOffset> OffsetTracker::Committable(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return std::nullopt;
  std::optional<int64_t> offset = it->second.offsets.Committable();
  if (!offset.has_value()) return std::nullopt;
  if (it->second.committed.has_value() && *offset <= *it->second.committed) return std::nullopt;
  return PartitionOffset{tp, *offset};
}

std::vector<PartitionOffset> OffsetTracker::Committable() const {
  std::vector<PartitionOffset> result;
  for (const auto& [tp, state] : partitions_) {
    if (std::optional<PartitionOffset> offset = Committable(tp)) result.push_back(*offset);
  }
  std::sort(result.begin(), result.end(),
            [](const PartitionOffset& a, const PartitionOffset& b) { return a.tp < b.tp; });
  return result;
}

void OffsetTracker::MarkCommitted(const std::vector<PartitionOffset>& offsets) {
  for (const PartitionOffset& committed : offsets) {
    auto it = partitions_.find(committed.tp);
    if (it == partitions_.end()) continue;
    if (!it->second.committed.has_value() || *it->second.committed < committed.offset) {
      it->second.committed = committed.offset;
    }
  }
}

std::optional<int64_t> OffsetTracker::Committed(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return std::nullopt;
  return it->second.committed;
}

size_t OffsetTracker::unacked() const {
  size_t total = 0;
  for (const auto& [tp, state] : partitions_) total += state.offsets.unacked();
  return total;
}

std::optional<int64_t> OffsetTracker::OldestUnackedTimestampMs() const {
  std::optional<int64_t> oldest;
  for (const auto& [tp, state] : partitions_) {
    std::optional<int64_t> ts = state.offsets.OldestUnackedTimestampMs();
    if (ts.has_value() && (!oldest.has_value() || *ts < *oldest)) oldest = ts;
  }
  return oldest;
}

}  // namespace kafka_sidecar::broker
