#include "sidecar/subscription.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::PartitionOffset;
using broker::TopicPartition;

// Records polled from Kafka in one step.
constexpr size_t kMaxPollRecords = 1000;

bool IsPermanent(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsPermissionDenied(status) ||
         absl::IsUnauthenticated(status);
}

void AddRecord(const broker::Message& m, uint64_t delivery_id, uint32_t attempt,
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

size_t RecordBytes(const broker::Message& m) {
  size_t bytes = m.tp.topic.size() + m.value.size() + (m.key ? m.key->size() : 0) + 32;
  for (const broker::Header& h : m.headers) bytes += h.key.size() + h.value.size() + 4;
  return bytes;
}

}  // namespace

Subscription::Subscription(SubscriptionOptions options,
                           std::unique_ptr<broker::GroupConsumer> consumer, Clock& clock,
                           ConsumeMetrics& metrics)
    : options_(std::move(options)),
      consumer_(std::move(consumer)),
      clock_(clock),
      metrics_(metrics) {
  absl::MutexLock lock(&mu_);
  next_commit_ = clock_.Now() + options_.commit_interval;
  commit_backoff_ = options_.commit_interval;
  empty_since_ = clock_.Now();
  last_contact_ = clock_.Now();
}

Subscription::~Subscription() { Close(absl::ZeroDuration(), absl::UnavailableError("closed")); }

absl::Status Subscription::Start() {
  if (absl::Status s = consumer_->Subscribe(options_.topics, this); !s.ok()) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    return s;
  }
  started_ = true;
  metrics_.subscriptions++;
  LOG(INFO) << "[" << options_.group << "] subscribed to " << absl::StrJoin(options_.topics, ",");
  poller_ = std::thread([this] { PollLoop(); });
  return absl::OkStatus();
}

bool Subscription::Attach(uint64_t stream_id, ConsumerStream* stream, uint32_t max_in_flight) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || closed_) return false;
  streams_[stream_id] = Stream{stream, max_in_flight};
  stream_ids_.push_back(stream_id);
  metrics_.streams++;
  Dispatch();
  return true;
}

void Subscription::Detach(uint64_t stream_id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  std::vector<Pending> in_flight;
  for (auto& [id, pending] : it->second.in_flight) in_flight.push_back(std::move(pending));
  streams_.erase(it);
  stream_ids_.erase(std::find(stream_ids_.begin(), stream_ids_.end(), stream_id));
  metrics_.streams--;
  for (Pending& pending : in_flight) {
    ++pending.attempt;
    Requeue(std::move(pending));
  }
  if (streams_.empty()) empty_since_ = clock_.Now();
  Dispatch();
}

std::optional<Subscription::Pending> Subscription::TakeInFlight(uint64_t stream_id,
                                                               uint64_t delivery_id) {
  auto stream = streams_.find(stream_id);
  if (stream != streams_.end()) {
    auto found = stream->second.in_flight.find(delivery_id);
    if (found != stream->second.in_flight.end()) {
      Pending pending = std::move(found->second);
      stream->second.in_flight.erase(found);
      return pending;
    }
  }
  metrics_.unknown_acks++;
  return std::nullopt;
}

void Subscription::Ack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids) {
  absl::MutexLock lock(&mu_);
  for (uint64_t id : delivery_ids) {
    if (std::optional<Pending> pending = TakeInFlight(stream_id, id)) {
      tracker_.Ack(pending->message.tp, pending->message.offset);
      metrics_.records_acked++;
    }
  }
  Dispatch();
}

void Subscription::Nack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids) {
  absl::MutexLock lock(&mu_);
  for (uint64_t id : delivery_ids) {
    if (std::optional<Pending> pending = TakeInFlight(stream_id, id)) {
      ++pending->attempt;
      Requeue(*std::move(pending));
      metrics_.records_nacked++;
    }
  }
  Dispatch();
}

void Subscription::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

void Subscription::Close(absl::Duration grace, const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (started_ && !stopping_) {
      draining_ = true;
      auto all_acked = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return InFlight() == 0; };
      mu_.AwaitWithTimeout(absl::Condition(&all_acked), grace);
      stopping_ = true;
      if (end_status_.ok()) end_status_ = status;
    }
  }
  // The poll thread commits, leaves the group and ends the streams (it may have stopped by
  // itself already, after the linger or a permanent error).
  if (poller_.joinable()) poller_.join();
}

bool Subscription::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

void Subscription::OnAssigned(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  for (const TopicPartition& tp : partitions) {
    tracker_.Add(tp);
    assigned_.insert(tp);
    if (paused_) to_pause_.push_back(tp);
  }
}

void Subscription::OnRevoked(const std::vector<TopicPartition>& partitions, bool lost) {
  std::vector<PartitionOffset> commit;
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    for (const TopicPartition& tp : partitions) {
      if (std::optional<PartitionOffset> offset = tracker_.Committable(tp)) {
        commit.push_back(*offset);
      }
      tracker_.Remove(tp);
      assigned_.erase(tp);
      auto queue = queues_.find(tp);
      if (queue != queues_.end()) {
        buffered_ -= queue->second.size();
        queues_.erase(queue);
      }
    }
    // Their in-flight records now belong to another member: acks for them become stale.
    for (auto& [id, stream] : streams_) {
      absl::erase_if(stream.in_flight, [this](const auto& entry) {
        return !tracker_.Tracks(entry.second.message.tp);
      });
    }
  }
  // When leaving, the final commit was already sent (and Kafka may be gone: this must not
  // block).
  if (lost || stopping || commit.empty()) return;
  // Synchronous: the partitions must not move before their acked offsets are in Kafka.
  absl::Status committed = consumer_->CommitSync(commit);
  if (committed.ok()) {
    metrics_.commits_succeeded++;
  } else {
    metrics_.commits_failed++;
    LOG(WARNING) << "[" << options_.group << "] commit on revoke: " << committed;
  }
}

void Subscription::PollLoop() {
  std::vector<Message> polled;
  polled.reserve(kMaxPollRecords);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    polled.clear();
    size_t room;
    {
      absl::MutexLock lock(&mu_);
      const size_t cap = std::max<size_t>(options_.max_buffered_records / 2, 1);
      room = buffered_ >= cap ? 0 : std::min(kMaxPollRecords, cap - buffered_);
    }
    // With no room, records stay in the client (which stops fetching at its own limit) and
    // only group events are served.
    absl::Status status = consumer_->Poll(
        room > 0 ? options_.poll_timeout : options_.full_poll_interval, room, polled);
    const size_t prefetched = consumer_->Prefetched();
    Plan plan;
    {
      absl::MutexLock lock(&mu_);
      plan = Step(polled, status, prefetched);
    }
    consumer_->Pause(plan.pause);
    consumer_->Resume(plan.resume);
    if (!plan.commit.empty()) {
      consumer_->CommitAsync(plan.commit, [this](const absl::Status& s,
                                                 const std::vector<PartitionOffset>& offsets) {
        OnCommitted(s, offsets);
      });
    }
    if (plan.check_reachable > absl::ZeroDuration() &&
        consumer_->CheckReachable(plan.check_reachable).ok()) {
      absl::MutexLock lock(&mu_);
      last_contact_ = clock_.Now();
    }
    if (plan.stop) break;
  }

  // Leave the group. The streams end first: they get no more records either way, and Kafka
  // may be slow or gone. Then commit what was acked and close, both within close_timeout.
  std::vector<PartitionOffset> commit;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    draining_ = true;
    commit = tracker_.Committable();
    EndStreams(end_status_.ok() ? absl::UnavailableError("the subscription was closed")
                                : end_status_);
  }
  if (!commit.empty()) {
    consumer_->CommitAsync(commit, [this](const absl::Status& s,
                                          const std::vector<PartitionOffset>& offsets) {
      OnCommitted(s, offsets);
    });
  }
  // Serves the commit result and the final revocation (which commits nothing more: see
  // OnRevoked).
  consumer_->Close(options_.close_timeout);
  absl::MutexLock lock(&mu_);
  closed_ = true;
  metrics_.subscriptions--;
  LOG(INFO) << "[" << options_.group << "] left the group";
}

Subscription::Plan Subscription::Step(std::vector<Message>& polled, const absl::Status& status,
                                      size_t prefetched) {
  Plan plan;
  const absl::Time now = clock_.Now();
  for (Message& m : polled) {
    // Records of partitions revoked meanwhile, and re-fetched ones, are not taken.
    if (!tracker_.Track(m.tp, m.offset)) continue;
    queues_[m.tp].push_back(Pending{std::move(m), 1});
    ++buffered_;
  }
  if (!polled.empty()) last_contact_ = now;

  if (IsPermanent(status)) {
    LOG(ERROR) << "[" << options_.group << "] " << status << "; ending its streams";
    end_status_ = status;
    plan.stop = true;
    return plan;
  }
  if (!status.ok()) LOG(WARNING) << "[" << options_.group << "] " << status << " (retrying)";
  // Quiet is not proof of trouble: an idle topic has no records. Without news from Kafka for
  // a while, ask it; unreachable past the timeout ends the streams.
  const absl::Duration silent = now - last_contact_;
  if (silent >= options_.kafka_unavailable_timeout) {
    end_status_ = absl::UnavailableError(absl::StrCat(
        "Kafka has been unreachable for ", absl::FormatDuration(silent),
        " (--kafka_unavailable_timeout_ms); the subscription was closed"));
    LOG(ERROR) << "[" << options_.group << "] " << end_status_.message();
    plan.stop = true;
    return plan;
  }
  const absl::Duration check_interval =
      std::clamp(options_.kafka_unavailable_timeout / 10, absl::Milliseconds(100), absl::Seconds(5));
  if (silent >= check_interval && now - last_reachability_check_ >= check_interval) {
    last_reachability_check_ = now;
    plan.check_reachable = std::min(check_interval, absl::Seconds(1));
  }

  Dispatch();

  // Backpressure: too much waiting here pauses every partition (librdkafka drops what it
  // prefetched for them); a quarter of it resumes them.
  const size_t waiting = buffered_ + prefetched;
  if (!paused_ && waiting >= options_.max_buffered_records) {
    paused_ = true;
    metrics_.pauses++;
    plan.pause.assign(assigned_.begin(), assigned_.end());
    LOG(INFO) << "[" << options_.group << "] " << waiting << " records waiting: paused "
              << plan.pause.size() << " partitions";
  } else if (paused_ && waiting <= options_.max_buffered_records / 4) {
    paused_ = false;
    plan.resume.assign(assigned_.begin(), assigned_.end());
    LOG(INFO) << "[" << options_.group << "] " << waiting << " records waiting: resumed "
              << plan.resume.size() << " partitions";
  }
  if (paused_) {
    plan.pause.insert(plan.pause.end(), to_pause_.begin(), to_pause_.end());
  }
  to_pause_.clear();

  if (!commit_in_flight_ && now >= next_commit_) {
    plan.commit = tracker_.Committable();
    if (plan.commit.empty()) {
      next_commit_ = now + options_.commit_interval;
    } else {
      commit_in_flight_ = true;
    }
  }

  if (streams_.empty() && now - empty_since_ >= options_.linger) {
    LOG(INFO) << "[" << options_.group << "] no stream for " << options_.linger
              << ": leaving the group";
    plan.stop = true;
  }
  return plan;
}

void Subscription::OnCommitted(const absl::Status& status,
                               const std::vector<PartitionOffset>& offsets) {
  absl::MutexLock lock(&mu_);
  commit_in_flight_ = false;
  if (status.ok()) {
    LOG_IF(INFO, stopping_) << "[" << options_.group << "] final commit done";
    last_contact_ = clock_.Now();
    tracker_.MarkCommitted(offsets);
    metrics_.commits_succeeded++;
    commit_backoff_ = options_.commit_interval;
    next_commit_ = clock_.Now() + options_.commit_interval;
    return;
  }
  metrics_.commits_failed++;
  if (stopping_) {
    LOG(WARNING) << "[" << options_.group << "] final commit: " << status;
    return;
  }
  // Acked state stays in the tracker: the retry commits it (and whatever was acked since).
  commit_backoff_ = std::min(commit_backoff_ * 2, options_.max_commit_backoff);
  next_commit_ = clock_.Now() + commit_backoff_;
  LOG(WARNING) << "[" << options_.group << "] " << status << "; retrying in " << commit_backoff_;
}

void Subscription::Requeue(Pending pending) {
  std::deque<Pending>& queue = queues_[pending.message.tp];
  auto at = std::lower_bound(queue.begin(), queue.end(), pending.message.offset,
                             [](const Pending& p, int64_t offset) { return p.message.offset < offset; });
  queue.insert(at, std::move(pending));
  ++buffered_;
}

uint64_t Subscription::Route(const TopicPartition& tp) const {
  return stream_ids_[absl::HashOf(tp) % stream_ids_.size()];
}

void Subscription::Dispatch() {
  if (draining_ || streams_.empty()) return;
  struct Outgoing {
    kafka_sidecar::v1::RecordBatch batch;
    size_t bytes = 0;
  };
  bool full = true;  // a batch filled up: there may be more to send
  while (full && buffered_ > 0) {
    full = false;
    std::map<uint64_t, Outgoing> outgoing;
    for (auto& [tp, queue] : queues_) {
      if (queue.empty()) continue;
      const uint64_t id = Route(tp);
      Stream& stream = streams_.at(id);
      Outgoing& out = outgoing[id];
      while (!queue.empty() && stream.in_flight.size() < stream.max_in_flight) {
        const size_t bytes = RecordBytes(queue.front().message);
        if (static_cast<size_t>(out.batch.records_size()) >= options_.max_batch_records ||
            (out.bytes > 0 && out.bytes + bytes > options_.max_batch_bytes)) {
          full = true;
          break;
        }
        Pending pending = std::move(queue.front());
        queue.pop_front();
        --buffered_;
        const uint64_t delivery_id = stream.next_delivery_id++;
        AddRecord(pending.message, delivery_id, pending.attempt, out.batch);
        out.bytes += bytes;
        if (pending.attempt > 1) metrics_.records_redelivered++;
        stream.in_flight.emplace(delivery_id, std::move(pending));
      }
    }
    for (auto& [id, out] : outgoing) {
      if (out.batch.records_size() == 0) continue;
      metrics_.records_delivered += out.batch.records_size();
      streams_.at(id).stream->Send(std::move(out.batch));
    }
  }
}

void Subscription::EndStreams(const absl::Status& status) {
  for (auto& [id, stream] : streams_) {
    stream.stream->End(status);
    metrics_.streams--;
  }
  streams_.clear();
  stream_ids_.clear();
}

size_t Subscription::InFlight() const {
  size_t total = 0;
  for (const auto& [id, stream] : streams_) total += stream.in_flight.size();
  return total;
}

}  // namespace kafka_sidecar::sidecar
