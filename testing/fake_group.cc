#include "testing/fake_group.h"

#include <utility>

namespace kafka_sidecar::testing {

using broker::GroupConsumer;
using broker::Message;
using broker::PartitionOffset;
using broker::TopicPartition;

// Forwards every call to its group, where the state lives.
class FakeGroup::Consumer final : public GroupConsumer {
 public:
  explicit Consumer(FakeGroup& group) : group_(group) {}

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         broker::RebalanceListener* listener) override {
    return group_.Subscribe(topics, listener);
  }
  absl::Status Poll(absl::Duration timeout, size_t max, std::vector<Message>& out) override {
    return group_.Poll(timeout, max, out);
  }
  void Wake() override { group_.Wake(); }
  size_t Prefetched() override { return group_.Prefetched(); }
  void Pause(const std::vector<TopicPartition>& partitions) override {
    group_.Pause(partitions, true);
  }
  void Resume(const std::vector<TopicPartition>& partitions) override {
    group_.Pause(partitions, false);
  }
  void CommitAsync(const std::vector<PartitionOffset>& offsets,
                   broker::CommitCallback done) override {
    group_.CommitAsync(offsets, std::move(done));
  }
  absl::Status CommitSync(const std::vector<PartitionOffset>& offsets) override {
    return group_.CommitSync(offsets);
  }
  absl::Status CheckReachable(absl::Duration) override { return group_.CheckReachable(); }
  std::vector<int64_t> HighWatermarks(const std::vector<TopicPartition>& tps) override {
    return std::vector<int64_t>(tps.size(), -1);
  }
  void Close(absl::Duration, Departure departure) override { group_.Close(departure); }

 private:
  FakeGroup& group_;
};

std::unique_ptr<GroupConsumer> FakeGroup::NewConsumer() {
  return std::make_unique<Consumer>(*this);
}

void FakeGroup::Assign(const std::vector<TopicPartition>& partitions) {
  absl::MutexLock lock(&mu_);
  events_.push_back({.assign = true, .partitions = partitions});
}

void FakeGroup::Revoke(const std::vector<TopicPartition>& partitions, bool lost) {
  absl::MutexLock lock(&mu_);
  events_.push_back({.assign = false, .partitions = partitions, .lost = lost});
}

void FakeGroup::Fetch(std::vector<Message> records) {
  absl::MutexLock lock(&mu_);
  for (Message& m : records) fetched_.push_back(std::move(m));
}

void FakeGroup::FailNextPoll(absl::Status status) {
  absl::MutexLock lock(&mu_);
  poll_errors_.push_back(std::move(status));
}

void FakeGroup::SetCommitOutcome(absl::Status status) {
  absl::MutexLock lock(&mu_);
  commit_outcome_ = std::move(status);
}

void FakeGroup::SetReachable(bool reachable) {
  absl::MutexLock lock(&mu_);
  reachable_ = reachable;
}

bool FakeGroup::Cycle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  // A Poll under way may have read the time before this call: the turn is the Poll that
  // starts after it, the step after that Poll, and the start of the next Poll. Meanwhile no
  // Poll waits.
  const int target = polls_started_ + 2;
  ++cycling_;
  auto turned = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return polls_started_ >= target || closed_;
  };
  const bool done = mu_.AwaitWithTimeout(absl::Condition(&turned), timeout);
  --cycling_;
  return done;
}

std::vector<std::string> FakeGroup::subscribed_topics() {
  absl::MutexLock lock(&mu_);
  return topics_;
}

std::map<TopicPartition, int64_t> FakeGroup::committed() {
  absl::MutexLock lock(&mu_);
  return committed_;
}

int FakeGroup::commit_requests() {
  absl::MutexLock lock(&mu_);
  return commit_requests_;
}

int FakeGroup::reachability_checks() {
  absl::MutexLock lock(&mu_);
  return reachability_checks_;
}

absl::flat_hash_set<TopicPartition> FakeGroup::paused() {
  absl::MutexLock lock(&mu_);
  return paused_;
}

int FakeGroup::polls() {
  absl::MutexLock lock(&mu_);
  return polls_started_;
}

bool FakeGroup::closed() {
  absl::MutexLock lock(&mu_);
  return closed_;
}

bool FakeGroup::left() {
  absl::MutexLock lock(&mu_);
  return left_;
}

bool FakeGroup::AwaitClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&closed_), timeout);
}

absl::Status FakeGroup::Subscribe(const std::vector<std::string>& topics,
                                  broker::RebalanceListener* listener) {
  absl::MutexLock lock(&mu_);
  topics_ = topics;
  listener_ = listener;
  return absl::OkStatus();
}

absl::Status FakeGroup::Poll(absl::Duration timeout, size_t max, std::vector<Message>& out) {
  std::deque<Event> events;
  std::deque<PendingCommit> commits;
  {
    absl::MutexLock lock(&mu_);
    ++polls_started_;
    auto ready = [this, max]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return woken_ || cycling_ > 0 || !events_.empty() || !commit_results_.empty() || !poll_errors_.empty() ||
             (max > 0 && !fetched_.empty());
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    woken_ = false;
    events.swap(events_);
    commits.swap(commit_results_);
  }
  Serve(std::move(events), std::move(commits));
  absl::MutexLock lock(&mu_);
  while (out.size() < max && !fetched_.empty()) {
    out.push_back(std::move(fetched_.front()));
    fetched_.pop_front();
  }
  absl::Status status;
  if (!poll_errors_.empty()) {
    status = std::move(poll_errors_.front());
    poll_errors_.pop_front();
  }
  return status;
}

void FakeGroup::Serve(std::deque<Event> events, std::deque<PendingCommit> commits) {
  broker::RebalanceListener* listener;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
  }
  for (const Event& event : events) {
    {
      absl::MutexLock lock(&mu_);
      for (const TopicPartition& tp : event.partitions) {
        if (event.assign) {
          assigned_.insert(tp);
        } else {
          assigned_.erase(tp);
          paused_.erase(tp);
        }
      }
    }
    if (event.assign) {
      listener->OnAssigned(event.partitions);
    } else {
      listener->OnRevoked(event.partitions, event.lost);
    }
  }
  for (PendingCommit& commit : commits) commit.done(commit.status, commit.offsets);
}

void FakeGroup::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

size_t FakeGroup::Prefetched() {
  absl::MutexLock lock(&mu_);
  return fetched_.size();
}

void FakeGroup::Pause(const std::vector<TopicPartition>& partitions, bool pause) {
  absl::MutexLock lock(&mu_);
  for (const TopicPartition& tp : partitions) {
    if (pause) {
      paused_.insert(tp);
    } else {
      paused_.erase(tp);
    }
  }
}

absl::Status FakeGroup::Commit(const std::vector<PartitionOffset>& offsets) {
  ++commit_requests_;
  if (!commit_outcome_.ok()) return commit_outcome_;
  for (const PartitionOffset& po : offsets) committed_[po.tp] = po.offset;
  return absl::OkStatus();
}

void FakeGroup::CommitAsync(const std::vector<PartitionOffset>& offsets,
                            broker::CommitCallback done) {
  absl::MutexLock lock(&mu_);
  // The outcome is decided now and reported in the next Poll, as Kafka's answer would be.
  commit_results_.push_back({offsets, std::move(done), Commit(offsets)});
}

absl::Status FakeGroup::CommitSync(const std::vector<PartitionOffset>& offsets) {
  absl::MutexLock lock(&mu_);
  return Commit(offsets);
}

absl::Status FakeGroup::CheckReachable() {
  absl::MutexLock lock(&mu_);
  ++reachability_checks_;
  return reachable_ ? absl::OkStatus() : absl::UnavailableError("the fake group is unreachable");
}

void FakeGroup::Close(GroupConsumer::Departure departure) {
  // As Kafka's client does: the commit results still due, then the final revocation.
  std::deque<PendingCommit> commits;
  std::vector<TopicPartition> assigned;
  {
    absl::MutexLock lock(&mu_);
    commits.swap(commit_results_);
    assigned.assign(assigned_.begin(), assigned_.end());
  }
  std::deque<Event> revoke;
  if (!assigned.empty()) revoke.push_back({.assign = false, .partitions = assigned});
  Serve(std::move(revoke), std::move(commits));
  absl::MutexLock lock(&mu_);
  left_ = departure == GroupConsumer::Departure::kLeave;
  closed_ = true;
}

}  // namespace kafka_sidecar::testing
