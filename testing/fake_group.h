#ifndef KAFKA_SIDECAR_TESTING_FAKE_GROUP_H_
#define KAFKA_SIDECAR_TESTING_FAKE_GROUP_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/consumer.h"

namespace kafka_sidecar::testing {

// Kafka as one group member sees it, scripted by the test: the GroupConsumer it makes meets
// assignments, revocations, fetched records, commit outcomes and errors in its next Poll, as
// the test orders them, and the test sees what its user did (commits, pauses, leaving).
// Nothing waits on real Kafka timers, so a Subscription on it, with a SimulatedClock, runs a
// rebalance or a commit backoff in milliseconds.
//
// Thread-safe: the test scripts and looks on its thread, the consumer's user polls on its own.
// The group outlives its consumers (a Subscription destroys its consumer when it leaves).
class FakeGroup {
 public:
  FakeGroup() = default;
  FakeGroup(const FakeGroup&) = delete;
  FakeGroup& operator=(const FakeGroup&) = delete;

  // A consumer of this group (one at a time).
  std::unique_ptr<broker::GroupConsumer> NewConsumer();

  // Scripting. Events reach the listener in the next Poll, in this order; records fetched are
  // returned by Polls after the events of the same Poll.
  void Assign(const std::vector<broker::TopicPartition>& partitions);
  void Revoke(const std::vector<broker::TopicPartition>& partitions, bool lost = false);
  // Records the client has fetched (offsets as given).
  void Fetch(std::vector<broker::Message> records);
  // The next Poll returns `status` (after serving events).
  void FailNextPoll(absl::Status status);
  // Commits from now on end with `status` (OK: they succeed again).
  void SetCommitOutcome(absl::Status status);
  // What CheckReachable answers from now on.
  void SetReachable(bool reachable);

  // Lets the consumer's user run one more whole turn of its poll loop with the time as it is
  // now: returns once a Poll that began after this call has returned and the next one began
  // (or the consumer closed). False after `timeout`.
  bool Cycle(absl::Duration timeout = absl::Seconds(10));

  // What the consumer's user did.
  std::vector<std::string> subscribed_topics();
  // The last offset committed per partition (each the next offset to read).
  std::map<broker::TopicPartition, int64_t> committed();
  int commit_requests();  // asynchronous and synchronous, successful or not
  int reachability_checks();
  absl::flat_hash_set<broker::TopicPartition> paused();
  int polls();
  // True once Close was called; `left` says whether it left (Departure::kLeave).
  bool closed();
  bool left();
  // Waits up to `timeout` for Close.
  bool AwaitClosed(absl::Duration timeout);

 private:
  class Consumer;
  struct Event {
    bool assign = false;
    std::vector<broker::TopicPartition> partitions;
    bool lost = false;
  };
  struct PendingCommit {
    std::vector<broker::PartitionOffset> offsets;
    broker::CommitCallback done;
    absl::Status status;
  };

  // The consumer's calls.
  absl::Status Subscribe(const std::vector<std::string>& topics,
                         broker::RebalanceListener* listener);
  absl::Status Poll(absl::Duration timeout, size_t max, std::vector<broker::Message>& out);
  void Wake();
  size_t Prefetched();
  void Pause(const std::vector<broker::TopicPartition>& partitions, bool pause);
  void CommitAsync(const std::vector<broker::PartitionOffset>& offsets,
                   broker::CommitCallback done);
  absl::Status CommitSync(const std::vector<broker::PartitionOffset>& offsets);
  absl::Status CheckReachable();
  void Close(broker::GroupConsumer::Departure departure);
  // Runs the events and commit results taken from the queues, outside the lock (the listener
  // and callbacks take their own locks, and may call back into the consumer).
  void Serve(std::deque<Event> events, std::deque<PendingCommit> commits);
  absl::Status Commit(const std::vector<broker::PartitionOffset>& offsets)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  broker::RebalanceListener* listener_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::string> topics_ ABSL_GUARDED_BY(mu_);
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  std::deque<broker::Message> fetched_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingCommit> commit_results_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> poll_errors_ ABSL_GUARDED_BY(mu_);
  absl::Status commit_outcome_ ABSL_GUARDED_BY(mu_);
  bool reachable_ ABSL_GUARDED_BY(mu_) = true;
  int reachability_checks_ ABSL_GUARDED_BY(mu_) = 0;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  int cycling_ ABSL_GUARDED_BY(mu_) = 0;  // Cycle calls waiting: no Poll waits
  int polls_started_ ABSL_GUARDED_BY(mu_) = 0;  // Polls begun
  std::map<broker::TopicPartition, int64_t> committed_ ABSL_GUARDED_BY(mu_);
  int commit_requests_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<broker::TopicPartition> assigned_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<broker::TopicPartition> paused_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool left_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_FAKE_GROUP_H_
