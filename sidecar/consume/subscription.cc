#include "sidecar/consume/subscription.h"

#include <glog/logging.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <utility>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/kafka_names.h"

// gperftools' tcmalloc, when the binary links it (sidecar/BUILD.bazel).
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));

namespace kafka_sidecar::sidecar {
namespace {

using broker::Message;
using broker::PartitionOffset;
using broker::TopicPartition;

// Records polled from Kafka in one step: enough that the poll keeps up with librdkafka's
// fetching on a backlog.
constexpr size_t kMaxPollRecords = 10000;

bool IsPermanent(const absl::Status& status) {
  return absl::IsNotFound(status) || absl::IsPermissionDenied(status) ||
         absl::IsUnauthenticated(status) || absl::IsFailedPrecondition(status);
}

// The allocator keeps memory that was freed for reuse: give it back to the system, or a sidecar
// whose subscriptions come and go stays at its peak resident size. The sidecar binary runs on
// tcmalloc (the weak symbol is there then); otherwise glibc keeps it in its arenas (librdkafka's
// threads each allocate in one). Not under AddressSanitizer: it owns the heap, glibc's arenas
// are never set up, and malloc_trim crashes on them.
void ReleaseFreeMemory() {
  if (MallocExtension_ReleaseFreeMemory != nullptr) {
    MallocExtension_ReleaseFreeMemory();
    return;
  }
#if defined(__GLIBC__) && !defined(ABSL_HAVE_ADDRESS_SANITIZER)
  malloc_trim(0);
#endif
}

}  // namespace

Subscription::Subscription(SubscriptionOptions options,
                           std::unique_ptr<broker::GroupConsumer> consumer,
                           broker::Producer* dead_letters, Clock& clock, ConsumeMetrics& metrics)
    : options_(std::move(options)),
      log_group_(PrintableName(options_.group)),
      consumer_(std::move(consumer)),
      dead_letters_(dead_letters),
      inbox_(std::make_shared<Inbox>()),
      clock_(clock),
      metrics_(metrics),
      dispatcher_(options_.dispatch, metrics),
      commits_(options_.commit_interval, options_.max_commit_backoff, clock_.Now()),
      kafka_(options_.kafka_unavailable_timeout, clock_.Now()),
      flow_(options_.max_buffered_records, options_.max_buffered_bytes, kMaxPollRecords),
      linger_(options_.linger, clock_.Now()) {
  CHECK(dead_letters_ != nullptr || options_.dispatch.policy.dead_letter_topic.empty())
      << "a dead-letter policy needs a producer";
  absl::MutexLock lock(&inbox_->mu);
  inbox_->subscription = this;
}

Subscription::~Subscription() {
  Close(absl::ZeroDuration(), absl::UnavailableError("closed"),
        broker::GroupConsumer::Departure::kLeave);
  // Dead-letter writes still under way report to nobody: their records were not acked, so
  // Kafka delivers them again.
  absl::MutexLock lock(&inbox_->mu);
  inbox_->subscription = nullptr;
}

absl::Status Subscription::Start() {
  if (absl::Status s = consumer_->Subscribe(options_.topics, this); !s.ok()) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    return s;
  }
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
  }
  metrics_.subscriptions++;
  LOG(INFO) << "[" << log_group_ << "] subscribed to " << absl::StrJoin(options_.topics, ",");
  absl::MutexLock lock(&join_mu_);
  poller_ = std::thread([this] { PollLoop(); });
  return absl::OkStatus();
}

bool Subscription::Attach(uint64_t stream_id, ConsumerStream* stream, uint32_t max_in_flight) {
  bool send;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || closed_) return false;
    dispatcher_.AddStream(stream_id, stream, max_in_flight, clock_.Now());
    metrics_.streams++;
    send = Dispatch(clock_.Now());
  }
  if (send) SendOutbox();
  return true;
}

void Subscription::Detach(uint64_t stream_id) {
  bool send;
  {
    absl::MutexLock lock(&mu_);
    if (dispatcher_.stream(stream_id) == nullptr) return;
    const absl::Time now = clock_.Now();
    RemoveStream(stream_id, now);
    send = Dispatch(now);
  }
  if (send) SendOutbox();
}

void Subscription::RemoveStream(uint64_t stream_id, absl::Time gone_at) {
  dispatcher_.RemoveStream(stream_id);
  // Batches not yet handed over stay unsent (their records went back with the stream's), and
  // one being handed over right now finishes before the stream may go.
  for (auto it = outbox_.begin(); it != outbox_.end();) {
    it = it->stream_id == stream_id ? outbox_.erase(it) : it + 1;
  }
  auto handed_over = [this, stream_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sending_to_ != stream_id;
  };
  mu_.Await(absl::Condition(&handed_over));
  metrics_.streams--;
  // The linger counts from when the last stream was judged gone, not from when the wait for
  // its hand-over ended.
  if (dispatcher_.empty()) linger_.LastStreamGone(gone_at);
}

bool Subscription::Dispatch(absl::Time now) {
  if (!draining_) dispatcher_.Dispatch(now, outbox_);
  MaybeWakePoller();
  if (sending_ || outbox_.empty()) return false;
  sending_ = true;
  return true;
}

void Subscription::SendOutbox() {
  // One thread at a time hands batches over, in the order they were made: batches of one
  // stream must reach it in order. Others only queue theirs.
  mu_.Lock();
  while (!outbox_.empty()) {
    Dispatcher::Outgoing next = std::move(outbox_.front());
    outbox_.pop_front();
    sending_to_ = next.stream_id;
    mu_.Unlock();
    next.stream->Send(std::move(next.records));
    mu_.Lock();
    sending_to_ = 0;
  }
  sending_ = false;
  mu_.Unlock();
}

void Subscription::MaybeWakePoller() {
  if (poller_waits_ && flow_.ShouldWake(dispatcher_.buffered(), dispatcher_.buffered_bytes())) {
    poller_waits_ = false;
    consumer_->Wake();
  }
}

size_t Subscription::Room() const {
  return flow_.Room(dispatcher_.buffered(), dispatcher_.buffered_bytes());
}

void Subscription::Ack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids) {
  bool send;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    int64_t acked_count = 0;
    for (uint64_t id : delivery_ids) {
      if (std::optional<Dispatcher::Acked> acked = dispatcher_.Ack(stream_id, id, now)) {
        acked->offsets->Ack(acked->offset);
        ++acked_count;
      }
    }
    metrics_.records_acked += acked_count;
    if (static_cast<size_t>(acked_count) < delivery_ids.size()) {
      metrics_.unknown_acks += static_cast<int64_t>(delivery_ids.size()) - acked_count;
    }
    send = Dispatch(now);
  }
  if (send) SendOutbox();
}

void Subscription::Nack(uint64_t stream_id, absl::Span<const uint64_t> delivery_ids,
                        bool dead_letter, const std::string& reason) {
  bool send;
  std::vector<std::pair<uint64_t, DeadLetterRecord>> writes;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    for (uint64_t id : delivery_ids) {
      uint64_t ticket = 0;
      switch (dispatcher_.Nack(stream_id, id, dead_letter, now, &ticket)) {
        case Dispatcher::NackOutcome::kStale:
          metrics_.unknown_acks++;
          continue;
        case Dispatcher::NackOutcome::kRetry:
          metrics_.records_nacked++;
          metrics_.records_retried++;
          continue;
        case Dispatcher::NackOutcome::kDeadLetter:
          metrics_.records_nacked++;
          dead_letter_reasons_[ticket] = reason;
          if (std::optional<DeadLetterRecord> record = DeadLetterFor(ticket)) {
            writes.emplace_back(ticket, *std::move(record));
          }
          continue;
      }
    }
    send = Dispatch(now);
  }
  for (const auto& [ticket, record] : writes) WriteDeadLetter(ticket, record);
  if (send) SendOutbox();
}

std::optional<DeadLetterRecord> Subscription::DeadLetterFor(uint64_t ticket) {
  uint32_t attempts = 0;
  const Message* record = dispatcher_.DeadLetter(ticket, &attempts);
  if (record == nullptr) {  // its partition was revoked: the next owner delivers it again
    dead_letter_reasons_.erase(ticket);
    failed_writes_.erase(ticket);
    return std::nullopt;
  }
  return MakeDeadLetterRecord(options_.dispatch.policy, *record, options_.group, attempts,
                              dead_letter_reasons_[ticket]);
}

void Subscription::WriteDeadLetter(uint64_t ticket, const DeadLetterRecord& record) {
  std::vector<broker::HeaderView> headers;
  headers.reserve(record.headers.size());
  for (const broker::Header& h : record.headers) headers.push_back({h.key, h.value});
  broker::RecordView view;
  view.topic = record.topic;
  if (record.key.has_value()) view.key = *record.key;
  view.value = record.value;
  view.headers = headers;
  dead_letters_->Produce(view, [inbox = inbox_, ticket](const broker::DeliveryReport& report) {
    absl::MutexLock lock(&inbox->mu);
    if (inbox->subscription != nullptr) {
      inbox->subscription->OnDeadLetterWritten(ticket, report.status);
    }
  });
}

void Subscription::OnDeadLetterWritten(uint64_t ticket, const absl::Status& status) {
  bool send = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    if (status.ok()) {
      dead_letter_reasons_.erase(ticket);
      failed_writes_.erase(ticket);
      // Only now does its offset count as acked.
      if (std::optional<PartitionOffset> done = dispatcher_.DeadLettered(ticket)) {
        tracker_.Ack(done->tp, done->offset);
        metrics_.records_dead_lettered++;
        ++dead_lettered_;
      }
      send = Dispatch(now);
    } else {
      metrics_.dead_letter_write_failures++;
      FailedWrite& failed = failed_writes_[ticket];
      const absl::Duration backoff = DoublingBackoff(
          options_.dead_letter_retry, options_.max_dead_letter_retry, failed.failures++);
      failed.due = now + backoff;
      LOG(WARNING) << "[" << log_group_ << "] writing a record to the dead-letter topic '"
                   << PrintableName(options_.dispatch.policy.dead_letter_topic)
                   << "' failed: " << status << "; trying again in " << backoff
                   << " (its offset is not committed meanwhile)";
      // The poll thread tries again when it is due. (Once it has seen stopping_, it may be
      // releasing the consumer.)
      if (!stopping_) consumer_->Wake();
    }
  }
  if (send) SendOutbox();
}

void Subscription::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

void Subscription::Close(absl::Duration grace, const absl::Status& status,
                         broker::GroupConsumer::Departure departure) {
  Stop(grace, status, departure);
  Join();
}

void Subscription::Stop(absl::Duration grace, const absl::Status& status,
                        broker::GroupConsumer::Departure departure) {
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_) return;
  draining_ = true;
  departure_ = departure;
  auto all_acked = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return dispatcher_.in_flight() == 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&all_acked), grace);
  if (stopping_) return;  // the poll thread stopped by itself meanwhile
  stopping_ = true;
  if (end_status_.ok()) end_status_ = status;
  // The poll thread checks stopping_ once its poll returns: now. (It keeps the consumer until
  // it has seen stopping_, which only this lock's holder sets.)
  consumer_->Wake();
}

void Subscription::Join() {
  // The poll thread commits, leaves the group and ends the streams (it may have stopped by
  // itself already, after the linger or a permanent error).
  absl::MutexLock lock(&join_mu_);
  if (poller_.joinable()) poller_.join();
}

bool Subscription::AwaitClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&closed_), timeout);
}

bool Subscription::accepting() const {
  absl::MutexLock lock(&mu_);
  return !stopping_ && !closed_;
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
    if (flow_.paused()) to_pause_.push_back(tp);
  }
  metrics_.rebalances++;
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
      high_watermarks_.erase(tp);
      assigned_.erase(tp);
    }
    // Their records now belong to another member: acks for them become stale.
    metrics_.records_revoked += dispatcher_.DropPartitions(
        absl::flat_hash_set<TopicPartition>(partitions.begin(), partitions.end()));
    metrics_.rebalances++;
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
    LOG(WARNING) << "[" << log_group_ << "] commit on revoke: " << committed;
  }
}

void Subscription::PollLoop() {
  std::vector<Message> polled;
  polled.reserve(kMaxPollRecords);
  while (true) {
    polled.clear();
    size_t room;
    absl::Duration timeout;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      room = Room();
      // With no room, records stay in the client and only group events are served, until an
      // ack or a leaving stream makes room; while paused, no records come until the queue is
      // down to where the partitions resume. Either way the streams' acks end the wait
      // (MaybeWakePoller): a poll that waited out its timeout would leave the app idle.
      poller_waits_ = room == 0 || flow_.paused();
      // A retry or a dead-letter write due before the poll would end cuts it short.
      absl::Time due = dispatcher_.NextRetry();
      for (const auto& [ticket, failed] : failed_writes_) due = std::min(due, failed.due);
      timeout = std::clamp(due - clock_.Now(), absl::ZeroDuration(), options_.poll_timeout);
      // Acks since the last step may have brought the queue down to where paused partitions
      // resume already (no wake came: the poll was not waiting yet): step again at once.
      const bool resumable =
          flow_.paused() && flow_.ShouldWake(dispatcher_.buffered(), dispatcher_.buffered_bytes());
      if (resumable) timeout = absl::ZeroDuration();
    }
    absl::Status status = consumer_->Poll(timeout, room, polled);
    const size_t prefetched = consumer_->Prefetched();
    Plan plan;
    bool send;
    {
      absl::MutexLock lock(&mu_);
      poller_waits_ = false;
      plan = Step(polled, status, prefetched);
      send = !sending_ && !outbox_.empty();
      if (send) sending_ = true;
    }
    if (send) SendOutbox();
    for (const auto& [ticket, record] : plan.dead_letters) WriteDeadLetter(ticket, record);
    consumer_->Pause(plan.pause);
    consumer_->Resume(plan.resume);
    if (!plan.commit.empty()) {
      consumer_->CommitAsync(plan.commit, [this](const absl::Status& s,
                                                 const std::vector<PartitionOffset>& offsets) {
        OnCommitted(s, offsets);
      });
    }
    if (!plan.watermarks.empty()) {
      std::vector<int64_t> high = consumer_->HighWatermarks(plan.watermarks);
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < high.size(); ++i) {
        if (high[i] >= 0 && assigned_.contains(plan.watermarks[i])) {
          high_watermarks_[plan.watermarks[i]] = high[i];
        }
      }
    }
    if (plan.check_reachable > absl::ZeroDuration() &&
        consumer_->CheckReachable(plan.check_reachable).ok()) {
      absl::MutexLock lock(&mu_);
      kafka_.Heard(clock_.Now());
    }
    if (plan.stop) break;
  }

  // Leave the group. The streams end first: they get no more records either way, and Kafka
  // may be slow or gone. Then commit what was acked and close, both within close_timeout.
  std::vector<PartitionOffset> commit;
  broker::GroupConsumer::Departure departure;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    draining_ = true;
    poller_waits_ = false;  // nobody wakes a consumer that is closing
    departure = departure_;
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
  consumer_->Close(options_.close_timeout, departure);
  // Its librdkafka threads and buffers go now, not when the registry next looks.
  consumer_.reset();
  ReleaseFreeMemory();
  absl::MutexLock lock(&mu_);
  closed_ = true;
  metrics_.subscriptions--;
  assigned_.clear();
  LOG(INFO) << "[" << log_group_ << "] "
            << (departure == broker::GroupConsumer::Departure::kLeave
                    ? "left the group"
                    : "closed its membership for the shutdown");
}

Subscription::Plan Subscription::Step(std::vector<Message>& polled, const absl::Status& status,
                                      size_t prefetched) {
  Plan plan;
  const absl::Time now = clock_.Now();
  for (Message& m : polled) {
    // Records of partitions revoked meanwhile, and re-fetched ones, are not taken.
    broker::PartitionOffsets* offsets = tracker_.Offsets(m.tp);
    if (offsets == nullptr || !offsets->Track(m.offset, m.timestamp_ms)) continue;
    dispatcher_.Add(std::move(m), offsets);
  }
  if (!polled.empty()) kafka_.Heard(now);

  if (IsPermanent(status)) {
    end_status_ = status;
    if (std::optional<std::string> offered = broker::GroupProtocolMismatch(status)) {
      // librdkafka would try to join again every few seconds, refused each time, while the
      // streams wait for records that never come: end them saying what to change. Leaving
      // lets a later stream try again with a new membership.
      metrics_.group_protocol_mismatches++;
      end_status_ = absl::FailedPreconditionError(absl::StrCat(
          "group '", log_group_,
          "': its other members use a partition assignment strategy this sidecar does not "
          "offer, so Kafka refused to let it join; this sidecar offers ", *offered,
          " (--assignment_strategy). Every member of a group must offer a strategy in common: "
          "run the sidecars with the members' strategy (--assignment_strategy=range is the "
          "first choice of librdkafka's and the Java client's defaults), or move the members "
          "to ", *offered, " first; see \"Migrating a group of existing consumers onto "
          "sidecars\" in the operator guide. Kafka said: ", status.message()));
    }
    LOG(ERROR) << "[" << log_group_ << "] " << end_status_ << "; ending its streams";
    plan.stop = stopping_ = true;
    return plan;
  }
  if (!status.ok()) LOG(WARNING) << "[" << log_group_ << "] " << status << " (retrying)";
  // Quiet is not proof of trouble (an idle topic has no records): KafkaLiveness asks for a
  // metadata check now and then, and only a long silence ends the streams.
  const KafkaLiveness::Verdict kafka = kafka_.Judge(now);
  if (kafka.unreachable_for > absl::ZeroDuration()) {
    end_status_ = absl::UnavailableError(absl::StrCat(
        "Kafka has been unreachable for ", absl::FormatDuration(kafka.unreachable_for),
        " (--kafka_unavailable_timeout_ms); the subscription was closed"));
    LOG(ERROR) << "[" << log_group_ << "] " << end_status_.message();
    plan.stop = stopping_ = true;
    return plan;
  }
  plan.check_reachable = kafka.check;

  // A stream that holds records and has gone silent is ended; its records go to the others.
  for (uint64_t id : dispatcher_.InactiveSince(now - options_.inactivity_timeout)) {
    LOG(WARNING) << "[" << log_group_ << "] stream " << id << " sent no ack or nack for "
                 << options_.inactivity_timeout << " while holding records: ending it";
    dispatcher_.stream(id)->End(absl::DeadlineExceededError(absl::StrCat(
        "stream inactive: it held unacked records and sent no ack or nack for ",
        absl::FormatDuration(options_.inactivity_timeout),
        " (--client_inactivity_timeout_ms); its records went to other streams")));
    RemoveStream(id, now);
    metrics_.inactivity_drops++;
  }
  if (!draining_) dispatcher_.Dispatch(now, outbox_);
  for (auto it = failed_writes_.begin(); it != failed_writes_.end();) {
    const uint64_t ticket = it->first;
    const bool due = it->second.due <= now;
    ++it;  // DeadLetterFor may erase the entry
    if (!due) continue;
    failed_writes_[ticket].due = absl::InfiniteFuture();  // until this try is answered
    if (std::optional<DeadLetterRecord> record = DeadLetterFor(ticket)) {
      plan.dead_letters.emplace_back(ticket, *std::move(record));
    }
  }

  // Flow control. The poll takes whatever librdkafka has fetched (up to kMaxPollRecords at a
  // time) while the subscription's queue has room, so librdkafka's prefetch stays short while
  // the app keeps up, and its own limits (queued.min.messages and queued.max.messages.kbytes,
  // set at half the bound) are reached only if this thread falls that far behind:
  // reaching one stops fetching that partition until librdkafka's broker thread next looks,
  // up to a second (librdkafka 2.0.2 has no fetch.queue.backoff.ms). Only an app that falls
  // behind pauses the partitions: when the queue reaches the bound in records or bytes. A
  // pause drops what librdkafka prefetched for the partitions (fetched again on resume), which
  // is why the prefetch itself does not pause: pausing on it cost more in fetching again than
  // it saved. They resume at a quarter, and RdKafkaConsumer::Resume makes librdkafka fetch
  // again at once.
  const size_t buffered = dispatcher_.buffered();
  const size_t bytes = dispatcher_.buffered_bytes();
  const FlowControl::Change change = flow_.Update(buffered, bytes);
  if (change == FlowControl::Change::kPause) {
    metrics_.pauses++;
    plan.pause.assign(assigned_.begin(), assigned_.end());
    LOG(INFO) << "[" << log_group_ << "] " << buffered << " records (" << bytes
              << " bytes) waiting, " << prefetched << " prefetched: paused " << plan.pause.size()
              << " partitions";
  } else if (change == FlowControl::Change::kResume) {
    plan.resume.assign(assigned_.begin(), assigned_.end());
    LOG(INFO) << "[" << log_group_ << "] " << buffered << " records waiting: resumed "
              << plan.resume.size() << " partitions";
  }
  if (flow_.paused()) {
    plan.pause.insert(plan.pause.end(), to_pause_.begin(), to_pause_.end());
  }
  to_pause_.clear();

  if (now >= next_watermarks_) {
    next_watermarks_ = now + absl::Seconds(1);
    plan.watermarks.assign(assigned_.begin(), assigned_.end());
  }

  if (commits_.Due(now)) {
    plan.commit = tracker_.Committable();
    if (plan.commit.empty()) {
      commits_.NothingToCommit(now);
    } else {
      commits_.Started();
    }
  }

  if (dispatcher_.empty() && linger_.Expired(now)) {
    LOG(INFO) << "[" << log_group_ << "] no stream for " << linger_.linger()
              << ": leaving the group";
    // From here on Attach refuses: a stream arriving now gets a new membership.
    plan.stop = stopping_ = true;
  }
  return plan;
}

void Subscription::OnCommitted(const absl::Status& status,
                               const std::vector<PartitionOffset>& offsets) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  if (status.ok()) {
    LOG_IF(INFO, stopping_) << "[" << log_group_ << "] final commit done";
    kafka_.Heard(now);
    tracker_.MarkCommitted(offsets);
    metrics_.commits_succeeded++;
    commits_.Succeeded(now);
    return;
  }
  metrics_.commits_failed++;
  // Acked state stays in the tracker: the retry commits it (and whatever was acked since).
  const absl::Duration backoff = commits_.Failed(now);
  if (stopping_) {
    LOG(WARNING) << "[" << log_group_ << "] final commit: " << status;
    return;
  }
  LOG(WARNING) << "[" << log_group_ << "] " << status << "; retrying in " << backoff;
}

SubscriptionStats Subscription::Stats() const {
  absl::MutexLock lock(&mu_);
  SubscriptionStats stats;
  stats.group = options_.group;
  stats.topics = absl::StrJoin(options_.topics, ",");
  stats.streams = dispatcher_.stream_ids().size();
  stats.in_flight = dispatcher_.in_flight();
  stats.buffered = dispatcher_.buffered();
  stats.assigned_partitions = assigned_.size();
  stats.paused_partitions = flow_.paused() ? assigned_.size() : 0;
  stats.waiting_retry = dispatcher_.waiting_retry();
  stats.dead_lettering = dispatcher_.dead_lettering();
  stats.dead_lettered = dead_lettered_;
  for (const auto& [tp, high] : high_watermarks_) {
    std::optional<int64_t> committed = tracker_.Committed(tp);
    if (!committed.has_value()) committed = tracker_.FirstTracked(tp);
    if (committed.has_value()) stats.lag.emplace_back(tp, std::max<int64_t>(high - *committed, 0));
  }
  if (std::optional<int64_t> oldest = tracker_.OldestUnackedTimestampMs()) {
    // A producer's clock ahead of this one would make it negative.
    stats.oldest_unacked_age =
        std::max(clock_.Now() - absl::FromUnixMillis(*oldest), absl::ZeroDuration());
  }
  return stats;
}

void Subscription::EndStreams(const absl::Status& status) {
  for (uint64_t id : dispatcher_.stream_ids()) {
    dispatcher_.stream(id)->End(status);
    RemoveStream(id, clock_.Now());
  }
}

}  // namespace kafka_sidecar::sidecar
