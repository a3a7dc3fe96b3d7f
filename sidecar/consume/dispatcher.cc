#include "sidecar/consume/dispatcher.h"

#include <algorithm>
#include <iterator>
#include <tuple>
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

absl::string_view PartitionBytes(const int32_t& partition) {
  return absl::string_view(reinterpret_cast<const char*>(&partition), sizeof(partition));
}

}  // namespace

void Dispatcher::Queue::PopFront() {
  ++head_;
  if (head_ == items_.size()) {
    items_.clear();
    head_ = 0;
  } else if (head_ >= 1024 && head_ * 2 >= items_.size()) {
    items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

void Dispatcher::Queue::PushFront(Pending pending) {
  if (head_ > 0) {
    items_[--head_] = std::move(pending);
  } else {
    items_.insert(items_.begin(), std::move(pending));
  }
}

void Dispatcher::Queue::PushRedelivery(Pending pending) {
  // Redeliveries sit at the front, so the first later record of the partition is near it.
  size_t at = items_.size();
  for (size_t i = head_; i < items_.size(); ++i) {
    const Message& m = items_[i].message;
    if (m.offset > pending.message.offset && m.tp == pending.message.tp) {
      at = i;
      break;
    }
  }
  if (at == head_) {
    PushFront(std::move(pending));
  } else {
    items_.insert(items_.begin() + static_cast<ptrdiff_t>(at), std::move(pending));
  }
}

template <typename Pred>
size_t Dispatcher::Queue::EraseIf(Pred drop, size_t& bytes) {
  size_t kept = 0;
  size_t dropped = 0;
  for (size_t i = head_; i < items_.size(); ++i) {
    if (drop(items_[i])) {
      bytes += items_[i].bytes;
      ++dropped;
      continue;
    }
    if (kept != i - head_) items_[head_ + kept] = std::move(items_[i]);
    ++kept;
  }
  items_.erase(items_.begin() + static_cast<ptrdiff_t>(head_ + kept), items_.end());
  if (empty()) {
    items_.clear();
    head_ = 0;
  }
  return dropped;
}

std::vector<Dispatcher::Pending> Dispatcher::Queue::TakeAll() {
  std::vector<Pending> all;
  if (head_ == 0) {
    all.swap(items_);
  } else {
    all.assign(std::make_move_iterator(items_.begin() + static_cast<ptrdiff_t>(head_)),
               std::make_move_iterator(items_.end()));
    items_.clear();
  }
  head_ = 0;
  return all;
}

Dispatcher::Dispatcher(Options options, ConsumeMetrics& metrics)
    : options_(options), metrics_(metrics) {}

uint64_t Dispatcher::RouteOf(const Message& m) {
  if (m.tp.topic != last_topic_) {
    last_topic_ = m.tp.topic;
    last_topic_hash_ = HashRing::Hash(m.tp.topic);
  }
  const uint64_t topic = last_topic_hash_;
  if (options_.ordering == Ordering::kKey && m.key.has_value()) {
    return HashRing::Hash(*m.key, topic);
  }
  // A null key (or partition ordering) routes by partition; a distinct seed keeps partition
  // routes apart from key routes.
  return HashRing::Hash(PartitionBytes(m.tp.partition), ~topic);
}

void Dispatcher::List(uint64_t route_id, const Route& route, size_t count, bool front) {
  std::deque<Ready>& list = route.stream == 0 ? unowned_ : streams_.at(route.stream).ready;
  const Ready ready{route_id, route.seq};
  if (count == 1) {
    front ? list.push_front(ready) : list.push_back(ready);
  } else if (front) {
    list.insert(list.begin(), count, ready);
  } else {
    list.insert(list.end(), count, ready);
  }
}

void Dispatcher::MoveRoute(uint64_t route_id, Route& route, uint64_t stream) {
  route.stream = stream != 0 ? stream : streams_.empty() ? 0 : ring_.Pick(route_id);
  route.seq = next_seq_++;
  if (route.queued.empty() || route.parked()) return;
  List(route_id, route, route.queued.size(), /*front=*/route.queued.front().attempt > 1);
}

void Dispatcher::Release(uint64_t route_id, Route& route) {
  if (route.parked()) return;
  if (route.queued.empty() && route.in_flight == 0) {
    routes_.erase(route_id);
    return;
  }
  // A route with records in flight stays pinned to their stream.
  MoveRoute(route_id, route, route.in_flight > 0 ? route.stream : 0);
}

void Dispatcher::ReleaseDueRetries(absl::Time now) {
  while (!retries_.empty() && retries_.begin()->first <= now) {
    const auto [due, route_id] = *retries_.begin();
    retries_.erase(retries_.begin());
    auto route = routes_.find(route_id);
    if (route == routes_.end() || route->second.retry_at != due) continue;
    route->second.retry_at = absl::InfinitePast();
    Release(route_id, route->second);
  }
  while (!none_retries_.empty() && none_retries_.begin()->first <= now) {
    Pending pending = std::move(none_retries_.begin()->second);
    none_retries_.erase(none_retries_.begin());
    Stream* to = LeastLoaded();
    (to != nullptr ? to->queued : unrouted_).PushFront(std::move(pending));
  }
}

void Dispatcher::CancelRetry(uint64_t route_id, Route& route) {
  if (route.retry_at == absl::InfinitePast()) return;
  auto [first, last] = retries_.equal_range(route.retry_at);
  for (auto it = first; it != last; ++it) {
    if (it->second == route_id) {
      retries_.erase(it);
      break;
    }
  }
  route.retry_at = absl::InfinitePast();
}

absl::Time Dispatcher::NextRetry() const {
  absl::Time next = absl::InfiniteFuture();
  if (!retries_.empty()) next = retries_.begin()->first;
  if (!none_retries_.empty()) next = std::min(next, none_retries_.begin()->first);
  return next;
}

void Dispatcher::RememberAttempt(const Pending& pending, uint32_t next_attempt) {
  if (next_attempt <= 1 || remembered_count_ >= options_.max_remembered_attempts) return;
  if (remembered_[pending.message.tp].insert_or_assign(pending.message.offset, next_attempt).second) {
    ++remembered_count_;
  }
}

uint32_t Dispatcher::RecallAttempt(const Message& message) {
  auto partition = remembered_.find(message.tp);
  if (partition == remembered_.end()) return 1;
  std::map<int64_t, uint32_t>& offsets = partition->second;
  // Offsets come in increasing: those below are past for good.
  const auto past = offsets.lower_bound(message.offset);
  remembered_count_ -= static_cast<size_t>(std::distance(offsets.begin(), past));
  offsets.erase(offsets.begin(), past);
  uint32_t attempt = 1;
  if (!offsets.empty() && offsets.begin()->first == message.offset) {
    attempt = offsets.begin()->second;
    offsets.erase(offsets.begin());
    --remembered_count_;
  }
  if (offsets.empty()) remembered_.erase(partition);
  return attempt;
}

Dispatcher::Stream* Dispatcher::LeastLoaded() {
  Stream* least = nullptr;
  size_t load = 0;
  for (auto& [id, s] : streams_) {
    const size_t mine = s.in_flight.size() + s.queued.size();
    if (least == nullptr || mine < load) {
      least = &s;
      load = mine;
    }
  }
  return least;
}

void Dispatcher::AddStream(uint64_t id, ConsumerStream* stream, uint32_t max_in_flight,
                           absl::Time now) {
  ring_.Add(id);
  Stream& s = streams_[id];
  s.stream = stream;
  s.max_in_flight = max_in_flight;
  s.last_activity = now;
  s.in_flight.reserve(std::min<uint32_t>(max_in_flight, 4096));
  if (options_.ordering == Ordering::kNone) {
    for (Pending& pending : unrouted_.TakeAll()) s.queued.PushBack(std::move(pending));
    return;
  }
  std::deque<Ready> waiting;
  waiting.swap(unowned_);
  for (const Ready& ready : waiting) {
    auto route = routes_.find(ready.route);
    // The first entry of a route moves all its records (its later entries are stale then).
    if (route != routes_.end() && route->second.seq == ready.seq) {
      MoveRoute(ready.route, route->second, id);
    }
  }
}

void Dispatcher::RemoveStream(uint64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream removed = std::move(it->second);
  streams_.erase(it);
  ring_.Remove(id);

  // Its in-flight records, one attempt more, in offset order: each goes ahead of the later
  // records of its partition, also when a nacked one already waits ahead of them.
  std::vector<Pending> in_flight;
  in_flight.reserve(removed.in_flight.size());
  for (auto& [delivery_id, pending] : removed.in_flight) {
    ++pending.attempt;
    buffered_bytes_ += pending.bytes;
    in_flight.push_back(std::move(pending));
  }
  in_flight_ -= in_flight.size();
  buffered_ += in_flight.size();
  std::sort(in_flight.begin(), in_flight.end(), [](const Pending& a, const Pending& b) {
    return std::tie(a.message.tp, a.message.offset) < std::tie(b.message.tp, b.message.offset);
  });

  if (options_.ordering == Ordering::kNone) {
    for (Pending& pending : in_flight) {
      Stream* to = LeastLoaded();
      (to != nullptr ? to->queued : unrouted_).PushFront(std::move(pending));
    }
    for (Pending& pending : removed.queued.TakeAll()) {
      Stream* to = LeastLoaded();
      (to != nullptr ? to->queued : unrouted_).PushBack(std::move(pending));
    }
    return;
  }

  // The routes it owned: those it had records of in flight, and those listed as ready with it.
  std::vector<uint64_t> owned;
  for (Pending& pending : in_flight) {
    const uint64_t route_id = pending.route;
    auto [route, created] = routes_.try_emplace(route_id);
    if (created) route->second.stream = id;  // not expected: a route in flight is known
    if (route->second.in_flight > 0) --route->second.in_flight;
    if (pending.holds_route) route->second.retry_in_flight = false;
    route->second.queued.PushRedelivery(std::move(pending));
    owned.push_back(route_id);
  }
  for (const Ready& ready : removed.ready) {
    auto route = routes_.find(ready.route);
    if (route != routes_.end() && route->second.seq == ready.seq &&
        (owned.empty() || owned.back() != ready.route)) {
      owned.push_back(ready.route);
    }
  }
  for (uint64_t route_id : owned) {
    auto route = routes_.find(route_id);
    if (route == routes_.end() || route->second.stream != id) continue;  // done already
    if (route->second.queued.empty() && route->second.in_flight == 0 &&
        route->second.dead_lettering == 0) {
      routes_.erase(route);
      continue;
    }
    MoveRoute(route_id, route->second, /*stream=*/0);
  }
}

std::vector<uint64_t> Dispatcher::stream_ids() const {
  std::vector<uint64_t> ids;
  ids.reserve(streams_.size());
  for (const auto& [id, stream] : streams_) ids.push_back(id);
  return ids;
}

ConsumerStream* Dispatcher::stream(uint64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.stream;
}

void Dispatcher::Add(Message message, broker::PartitionOffsets* offsets) {
  const uint32_t attempt = remembered_.empty() ? 1 : RecallAttempt(message);
  const uint32_t bytes = static_cast<uint32_t>(std::min<size_t>(RecordBytes(message), UINT32_MAX));
  ++buffered_;
  buffered_bytes_ += bytes;
  // Built where it waits: a record is moved as few times as it can be.
  auto fill = [&](Pending& pending, uint64_t route) {
    pending.message = std::move(message);
    pending.offsets = offsets;
    pending.attempt = attempt;
    pending.bytes = bytes;
    pending.route = route;
  };
  if (options_.ordering == Ordering::kNone) {
    Stream* to = LeastLoaded();
    fill((to != nullptr ? to->queued : unrouted_).EmplaceBack(), 0);
    return;
  }
  const uint64_t route_id = RouteOf(message);
  auto [it, created] = routes_.try_emplace(route_id);
  Route& route = it->second;
  if (created) {
    route.stream = streams_.empty() ? 0 : ring_.Pick(route_id);
    route.seq = next_seq_++;
  }
  fill(route.queued.EmplaceBack(), route_id);
  if (!route.parked()) List(route_id, route, 1, /*front=*/false);
}

std::optional<Dispatcher::Pending> Dispatcher::TakeInFlight(uint64_t stream, uint64_t delivery_id) {
  auto s = streams_.find(stream);
  if (s == streams_.end()) return std::nullopt;
  auto found = s->second.in_flight.find(delivery_id);
  if (found == s->second.in_flight.end()) return std::nullopt;
  Pending pending = std::move(found->second);
  s->second.in_flight.erase(found);
  --in_flight_;
  return pending;
}

std::optional<Dispatcher::Acked> Dispatcher::Ack(uint64_t stream, uint64_t delivery_id,
                                                 absl::Time now) {
  auto s = streams_.find(stream);
  if (s == streams_.end()) return std::nullopt;
  auto found = s->second.in_flight.find(delivery_id);
  if (found == s->second.in_flight.end()) return std::nullopt;
  // Read in place and erased at the end: an acked record is never moved.
  Pending& pending = found->second;
  s->second.last_activity = now;
  --in_flight_;
  if (options_.ordering != Ordering::kNone) {
    auto it = routes_.find(pending.route);
    if (it != routes_.end()) {
      Route& route = it->second;
      // The record that held the route is done: its later records go on.
      const bool relist = pending.holds_route && route.retry_in_flight;
      if (relist) route.retry_in_flight = false;
      if (--route.in_flight == 0) {
        // The route's last in-flight record is acked: it is unpinned. Without records waiting
        // it is forgotten; otherwise they follow it to its ring owner, which may have changed.
        if (route.queued.empty() && route.dead_lettering == 0) {
          routes_.erase(it);
        } else if (const uint64_t owner = ring_.Pick(pending.route);
                   owner != route.stream || relist) {
          MoveRoute(pending.route, route, owner);
        }
      } else if (relist) {
        MoveRoute(pending.route, route, route.stream);
      }
    }
  }
  const Acked acked{pending.offsets, pending.message.offset};
  s->second.in_flight.erase(found);
  return acked;
}

Dispatcher::NackOutcome Dispatcher::Nack(uint64_t stream, uint64_t delivery_id,
                                         bool dead_letter, absl::Time now, uint64_t* ticket) {
  std::optional<Pending> pending = TakeInFlight(stream, delivery_id);
  if (!pending.has_value()) return NackOutcome::kStale;
  Stream& s = streams_.at(stream);
  s.last_activity = now;
  ++buffered_;
  buffered_bytes_ += pending->bytes;
  const uint64_t route_id = pending->route;
  Route* route = nullptr;
  if (options_.ordering != Ordering::kNone) {
    auto [it, created] = routes_.try_emplace(route_id);
    route = &it->second;
    if (created) {  // not expected: a route in flight is known
      route->stream = stream;
      route->seq = next_seq_++;
    }
    if (route->in_flight > 0) --route->in_flight;
    if (pending->holds_route) route->retry_in_flight = false;
  }

  if (options_.policy.GivesUp(pending->attempt, dead_letter)) {
    // Held until it is written; later records of its route wait behind it.
    const uint64_t id = next_ticket_++;
    if (ticket != nullptr) *ticket = id;
    if (route != nullptr) {
      ++route->dead_lettering;
      route->seq = next_seq_++;  // its listed records wait too
    }
    dead_letters_.emplace(id, Held{*std::move(pending), route_id});
    return NackOutcome::kDeadLetter;
  }

  const absl::Duration backoff = options_.policy.Backoff(pending->attempt);
  ++pending->attempt;
  pending->holds_route = options_.policy.HoldsKey();
  if (route == nullptr) {
    if (backoff > absl::ZeroDuration()) {
      none_retries_.emplace(now + backoff, *std::move(pending));
    } else {
      s.queued.PushFront(*std::move(pending));
    }
    return NackOutcome::kRetry;
  }
  // Back to the same stream, which still owns the route, before the route's later records.
  route->queued.PushRedelivery(*std::move(pending));
  if (backoff > absl::ZeroDuration()) {
    const absl::Time due = now + backoff;
    if (route->retry_at < due) {  // a record nacked earlier may wait already
      CancelRetry(route_id, *route);
      route->retry_at = due;
      retries_.emplace(due, route_id);
    }
    route->seq = next_seq_++;  // parked: its listed records wait too
  } else if (!route->parked()) {
    // Next out of this stream: a nacked record goes again before later records.
    List(route_id, *route, 1, /*front=*/true);
  }
  return NackOutcome::kRetry;
}

const Message* Dispatcher::DeadLetter(uint64_t ticket, uint32_t* attempts) const {
  auto held = dead_letters_.find(ticket);
  if (held == dead_letters_.end()) return nullptr;
  if (attempts != nullptr) *attempts = held->second.pending.attempt;
  return &held->second.pending.message;
}

std::optional<PartitionOffset> Dispatcher::DeadLettered(uint64_t ticket) {
  auto held = dead_letters_.find(ticket);
  if (held == dead_letters_.end()) return std::nullopt;
  Held done = std::move(held->second);
  dead_letters_.erase(held);
  --buffered_;
  buffered_bytes_ -= std::min<size_t>(done.pending.bytes, buffered_bytes_);
  if (options_.ordering != Ordering::kNone) {
    auto route = routes_.find(done.route);
    if (route != routes_.end() && route->second.dead_lettering > 0) {
      --route->second.dead_lettering;
      Release(done.route, route->second);
    }
  }
  return PartitionOffset{std::move(done.pending.message.tp), done.pending.message.offset};
}

size_t Dispatcher::DropPartitions(const absl::flat_hash_set<TopicPartition>& partitions) {
  auto dropped = [&partitions](const Pending& p) { return partitions.contains(p.message.tp); };
  // What was delivered and not acked comes back from Kafka to whichever member gets the
  // partition: should it be this one again, the attempts count on.
  auto remember_queued = [this, &dropped](const Pending& p) {
    if (!dropped(p)) return false;
    RememberAttempt(p, p.attempt);
    return true;
  };
  size_t count = 0;
  size_t bytes = 0;
  for (auto& [id, stream] : streams_) {
    for (auto it = stream.in_flight.begin(); it != stream.in_flight.end();) {
      if (!dropped(it->second)) {
        ++it;
        continue;
      }
      RememberAttempt(it->second, it->second.attempt + 1);
      auto route = routes_.find(it->second.route);
      if (route != routes_.end() && route->second.in_flight > 0) --route->second.in_flight;
      if (route != routes_.end() && it->second.holds_route) route->second.retry_in_flight = false;
      stream.in_flight.erase(it++);
      --in_flight_;
      ++count;
    }
    const size_t queued = stream.queued.EraseIf(remember_queued, bytes);
    buffered_ -= queued;
    count += queued;
  }
  const size_t unrouted = unrouted_.EraseIf(remember_queued, bytes);
  buffered_ -= unrouted;
  count += unrouted;
  for (auto it = none_retries_.begin(); it != none_retries_.end();) {
    if (!remember_queued(it->second)) {
      ++it;
      continue;
    }
    bytes += it->second.bytes;
    --buffered_;
    ++count;
    none_retries_.erase(it++);
  }
  for (auto it = dead_letters_.begin(); it != dead_letters_.end();) {
    if (!dropped(it->second.pending)) {
      ++it;
      continue;
    }
    RememberAttempt(it->second.pending, it->second.pending.attempt + 1);
    auto route = routes_.find(it->second.route);
    if (route != routes_.end() && route->second.dead_lettering > 0) --route->second.dead_lettering;
    bytes += it->second.pending.bytes;
    --buffered_;
    ++count;
    dead_letters_.erase(it++);
  }
  std::vector<uint64_t> unpinned;
  for (auto it = routes_.begin(); it != routes_.end();) {
    Route& route = it->second;
    const size_t queued = route.queued.EraseIf(remember_queued, bytes);
    buffered_ -= queued;
    count += queued;
    if (route.queued.empty() && route.in_flight == 0 && route.dead_lettering == 0) {
      CancelRetry(it->first, route);
      routes_.erase(it++);
      continue;
    }
    if (route.in_flight == 0 && route.stream != 0) unpinned.push_back(it->first);
    ++it;
  }
  buffered_bytes_ -= std::min(bytes, buffered_bytes_);
  // Routes whose in-flight records went with the partitions are unpinned now.
  for (uint64_t route_id : unpinned) {
    Route& route = routes_.at(route_id);
    if (const uint64_t owner = ring_.Pick(route_id); owner != route.stream) {
      MoveRoute(route_id, route, owner);
    }
  }
  return count;
}

Dispatcher::Pending* Dispatcher::PeekNext(Stream& stream, Route*& route) {
  route = nullptr;
  if (options_.ordering == Ordering::kNone) {
    return stream.queued.empty() ? nullptr : &stream.queued.front();
  }
  while (!stream.ready.empty()) {
    const Ready& ready = stream.ready.front();
    auto it = routes_.find(ready.route);
    if (it == routes_.end() || it->second.seq != ready.seq || it->second.queued.empty()) {
      stream.ready.pop_front();  // stale: the route moved, or its records were dropped
      continue;
    }
    route = &it->second;
    return &route->queued.front();
  }
  return nullptr;
}

bool Dispatcher::FillBatch(uint64_t id, Stream& s, absl::Time now, std::deque<Outgoing>& out) {
  Route* route = nullptr;
  if (PeekNext(s, route) == nullptr) return false;
  if (s.in_flight.empty()) s.last_activity = now;  // the silence clock starts now
  const size_t expected = std::min({static_cast<size_t>(s.max_in_flight - s.in_flight.size()),
                                    options_.max_batch_records, buffered_});
  const size_t average_bytes = buffered_bytes_ / std::max<size_t>(buffered_, 1);
  RecordBatchEncoder batch(std::min(options_.max_batch_bytes, expected * average_bytes));
  size_t bytes = 0;
  int64_t redelivered = 0;
  while (s.in_flight.size() < s.max_in_flight &&
         static_cast<size_t>(batch.records()) < options_.max_batch_records) {
    Pending* next = PeekNext(s, route);
    if (next == nullptr) break;
    if (bytes > 0 && bytes + next->bytes > options_.max_batch_bytes) break;
    // Encoded where it waits, then moved once, into the in-flight map.
    Queue& from = route != nullptr ? route->queued : s.queued;
    Pending& pending = *next;  // from's front
    if (route != nullptr) {
      ++route->in_flight;
      s.ready.pop_front();
      if (pending.holds_route) {
        // Out again: the route's later records wait until it is acked or given up on.
        route->retry_in_flight = true;
        route->seq = next_seq_++;
      }
    }
    --buffered_;
    buffered_bytes_ -= pending.bytes;
    ++in_flight_;
    bytes += pending.bytes;
    const uint64_t delivery_id = s.next_delivery_id++;
    batch.Add(pending.message, delivery_id, pending.attempt);
    if (pending.attempt > 1) ++redelivered;
    s.in_flight.emplace(delivery_id, std::move(pending));
    from.PopFront();
  }
  metrics_.records_delivered += batch.records();
  if (redelivered > 0) metrics_.records_redelivered += redelivered;
  out.push_back({id, s.stream, std::move(batch).Finish()});
  return true;
}

void Dispatcher::Dispatch(absl::Time now, std::deque<Outgoing>& out) {
  ReleaseDueRetries(now);
  for (auto& [id, s] : streams_) {
    while (s.in_flight.size() < s.max_in_flight && FillBatch(id, s, now, out)) {
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

}  // namespace kafka_sidecar::sidecar
