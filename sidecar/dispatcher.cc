#include "sidecar/dispatcher.h"

#include <algorithm>
#include <utility>

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::PartitionOffset;
using broker::TopicPartition;

size_t RecordBytes(const Message& m) {
  size_t bytes = m.tp.topic.size() + m.value.size() + (m.key ? m.key->size() : 0) + 32;
  for (const broker::Header& h : m.headers) bytes += h.key.size() + h.value.size() + 4;
  return bytes;
}

void AddRecord(const Message& m, uint64_t delivery_id, uint32_t attempt,
               kafka_sidecar::v1::RecordBatch& batch) {
  kafka_sidecar::v1::Record* record = batch.add_records();
  record->set_delivery_id(delivery_id);
  record->set_topic(m.tp.topic);
  record->set_partition(m.tp.partition);
  record->set_offset(m.offset);
  if (m.key.has_value()) record->set_key(*m.key);
  record->set_value(m.value);
  for (const broker::Header& h : m.headers) {
    kafka_sidecar::v1::Header* header = record->add_headers();
    header->set_key(h.key);
    header->set_value(h.value);
  }
  record->set_timestamp_ms(m.timestamp_ms);
  record->set_delivery_attempt(attempt);
}

absl::string_view PartitionBytes(const int32_t& partition) {
  return absl::string_view(reinterpret_cast<const char*>(&partition), sizeof(partition));
}

}  // namespace

Dispatcher::Dispatcher(Options options, ConsumeMetrics& metrics)
    : options_(options), metrics_(metrics) {}

uint64_t Dispatcher::RouteOf(const Message& m) const {
  const uint64_t topic = HashRing::Hash(m.tp.topic);
  if (options_.ordering == Ordering::kKey && m.key.has_value()) {
    return HashRing::Hash(*m.key, topic);
  }
  // A null key (or partition ordering) routes by partition; a distinct seed keeps partition
  // routes apart from key routes.
  return HashRing::Hash(PartitionBytes(m.tp.partition), ~topic);
}

void Dispatcher::AddStream(uint64_t id, ConsumerStream* stream, uint32_t max_in_flight,
                           absl::Time now) {
  ring_.Add(id);
  Stream& s = streams_[id];
  s.stream = stream;
  s.max_in_flight = max_in_flight;
  s.last_activity = now;
  std::deque<Pending> waiting;
  waiting.swap(unrouted_);
  buffered_ -= waiting.size();
  for (Pending& pending : waiting) Place(std::move(pending), /*redelivery=*/false);
}

void Dispatcher::RemoveStream(uint64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  std::vector<Pending> in_flight;
  for (auto& [delivery_id, pending] : it->second.in_flight) in_flight.push_back(std::move(pending));
  std::deque<Pending> queued = std::move(it->second.queue);
  buffered_ -= queued.size();
  streams_.erase(it);
  ring_.Remove(id);
  absl::erase_if(owners_, [id](const auto& entry) { return entry.second.stream == id; });
  // In-flight records (one attempt more) and queued ones together, in offset order: a route's
  // records reach its new owner ahead of anything newer, and in order even when a nacked
  // record was queued behind a later one in flight.
  for (Pending& pending : in_flight) ++pending.attempt;
  in_flight.insert(in_flight.end(), std::make_move_iterator(queued.begin()),
                   std::make_move_iterator(queued.end()));
  std::sort(in_flight.begin(), in_flight.end(), [](const Pending& a, const Pending& b) {
    return std::tie(a.message.tp, a.message.offset) < std::tie(b.message.tp, b.message.offset);
  });
  // Records sent before (attempt > 1) go ahead of later records of their partition; the rest
  // keep their arrival order at the back.
  for (Pending& pending : in_flight) {
    const bool redelivery = pending.attempt > 1;
    Place(std::move(pending), redelivery);
  }
}

std::vector<uint64_t> Dispatcher::stream_ids() const {
  std::vector<uint64_t> ids;
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  return ids;
}

ConsumerStream* Dispatcher::stream(uint64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.stream;
}

void Dispatcher::Add(Message message) {
  Pending pending;
  pending.route = RouteOf(message);
  pending.message = std::move(message);
  Place(std::move(pending), /*redelivery=*/false);
}

void Dispatcher::Place(Pending pending, bool redelivery) {
  ++buffered_;
  if (streams_.empty()) {
    Enqueue(unrouted_, std::move(pending), redelivery);
    return;
  }
  uint64_t id;
  if (options_.ordering == Ordering::kNone) {
    auto least = std::min_element(streams_.begin(), streams_.end(), [](const auto& a, const auto& b) {
      return a.second.in_flight.size() + a.second.queue.size() <
             b.second.in_flight.size() + b.second.queue.size();
    });
    id = least->first;
  } else {
    auto [owner, created] = owners_.try_emplace(pending.route, Owner{ring_.Pick(pending.route)});
    ++owner->second.queued;
    id = owner->second.stream;
  }
  Enqueue(streams_.at(id).queue, std::move(pending), redelivery);
}

void Dispatcher::Enqueue(std::deque<Pending>& queue, Pending pending, bool redelivery) {
  if (!redelivery) {
    queue.push_back(std::move(pending));
    return;
  }
  // Before the first later record of its partition; otherwise right after the last earlier
  // one (redeliveries placed in order stay in order); otherwise first.
  auto at = queue.begin();
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->message.tp != pending.message.tp) continue;
    if (it->message.offset > pending.message.offset) {
      at = it;
      break;
    }
    at = it + 1;
  }
  queue.insert(at, std::move(pending));
}

std::optional<Dispatcher::Pending> Dispatcher::TakeInFlight(uint64_t stream, uint64_t delivery_id) {
  auto s = streams_.find(stream);
  if (s == streams_.end()) return std::nullopt;
  auto found = s->second.in_flight.find(delivery_id);
  if (found == s->second.in_flight.end()) return std::nullopt;
  Pending pending = std::move(found->second);
  s->second.in_flight.erase(found);
  return pending;
}

std::optional<PartitionOffset> Dispatcher::Ack(uint64_t stream, uint64_t delivery_id,
                                               absl::Time now) {
  std::optional<Pending> pending = TakeInFlight(stream, delivery_id);
  if (!pending.has_value()) return std::nullopt;
  streams_.at(stream).last_activity = now;
  if (options_.ordering != Ordering::kNone) {
    auto owner = owners_.find(pending->route);
    if (owner != owners_.end() && --owner->second.in_flight == 0) Settle(pending->route);
  }
  return PartitionOffset{pending->message.tp, pending->message.offset};
}

bool Dispatcher::Nack(uint64_t stream, uint64_t delivery_id, absl::Time now) {
  std::optional<Pending> pending = TakeInFlight(stream, delivery_id);
  if (!pending.has_value()) return false;
  Stream& s = streams_.at(stream);
  s.last_activity = now;
  ++pending->attempt;
  ++buffered_;
  if (options_.ordering != Ordering::kNone) {
    auto owner = owners_.find(pending->route);
    if (owner != owners_.end()) {
      --owner->second.in_flight;
      ++owner->second.queued;
    }
  }
  // Back to the same stream, which still owns the route.
  Enqueue(s.queue, *std::move(pending), /*redelivery=*/true);
  return true;
}

void Dispatcher::Settle(uint64_t route) {
  auto owner = owners_.find(route);
  if (owner->second.queued == 0) {
    owners_.erase(owner);
    return;
  }
  const uint64_t next = ring_.Pick(route);
  if (next == owner->second.stream) return;
  // The route's ring owner changed while it was pinned: its queued records move there now.
  std::deque<Pending>& from = streams_.at(owner->second.stream).queue;
  std::deque<Pending>& to = streams_.at(next).queue;
  std::deque<Pending> stay;
  for (Pending& pending : from) {
    (pending.route == route ? to : stay).push_back(std::move(pending));
  }
  from.swap(stay);
  owner->second.stream = next;
}

size_t Dispatcher::DropPartitions(const absl::flat_hash_set<TopicPartition>& partitions) {
  auto dropped = [&partitions](const Pending& p) { return partitions.contains(p.message.tp); };
  size_t count = 0;
  auto filter = [&dropped, &count](std::deque<Pending>& queue) {
    const auto kept = std::remove_if(queue.begin(), queue.end(), dropped);
    count += queue.end() - kept;
    queue.erase(kept, queue.end());
  };
  filter(unrouted_);
  for (auto& [id, stream] : streams_) {
    filter(stream.queue);
    count += absl::erase_if(stream.in_flight,
                            [&dropped](const auto& entry) { return dropped(entry.second); });
  }
  RebuildOwners();
  return count;
}

void Dispatcher::RebuildOwners() {
  owners_.clear();
  buffered_ = unrouted_.size();
  for (auto& [id, stream] : streams_) {
    buffered_ += stream.queue.size();
    if (options_.ordering == Ordering::kNone) continue;
    for (const auto& [delivery_id, pending] : stream.in_flight) {
      owners_.try_emplace(pending.route, Owner{id}).first->second.in_flight++;
    }
    for (const Pending& pending : stream.queue) {
      owners_.try_emplace(pending.route, Owner{id}).first->second.queued++;
    }
  }
}

void Dispatcher::Dispatch(absl::Time now) {
  for (auto& [id, s] : streams_) {
    while (!s.queue.empty() && s.in_flight.size() < s.max_in_flight) {
      if (s.in_flight.empty()) s.last_activity = now;  // the silence clock starts now
      kafka_sidecar::v1::RecordBatch batch;
      size_t bytes = 0;
      while (!s.queue.empty() && s.in_flight.size() < s.max_in_flight &&
             static_cast<size_t>(batch.records_size()) < options_.max_batch_records) {
        const size_t record_bytes = RecordBytes(s.queue.front().message);
        if (bytes > 0 && bytes + record_bytes > options_.max_batch_bytes) break;
        Pending pending = std::move(s.queue.front());
        s.queue.pop_front();
        --buffered_;
        if (options_.ordering != Ordering::kNone) {
          Owner& owner = owners_.at(pending.route);
          --owner.queued;
          ++owner.in_flight;
        }
        const uint64_t delivery_id = s.next_delivery_id++;
        AddRecord(pending.message, delivery_id, pending.attempt, batch);
        bytes += record_bytes;
        if (pending.attempt > 1) metrics_.records_redelivered++;
        s.in_flight.emplace(delivery_id, std::move(pending));
      }
      metrics_.records_delivered += batch.records_size();
      s.stream->Send(std::move(batch));
    }
  }
}

std::vector<uint64_t> Dispatcher::InactiveSince(absl::Time cutoff) const {
  std::vector<uint64_t> inactive;
  for (const auto& [id, s] : streams_) {
    if (!s.in_flight.empty() && s.last_activity < cutoff) inactive.push_back(id);
  }
  return inactive;
}

size_t Dispatcher::in_flight() const {
  size_t total = 0;
  for (const auto& [id, s] : streams_) total += s.in_flight.size();
  return total;
}

}  // namespace kafka_sidecar::sidecar
