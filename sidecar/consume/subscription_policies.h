#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_POLICIES_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_POLICIES_H_

#include <cstddef>

#include "absl/time/time.h"

// The decisions a Subscription makes by time and by count, each a small class that is told
// what happened and when, and answers what to do now. None of them locks, sleeps or reads a
// clock: the Subscription calls them under its lock with its clock's time, and tests call them
// with any time they like.

namespace kafka_sidecar::sidecar {

// When acked offsets are committed: every `interval` while commits succeed; after a failure,
// again after a backoff that doubles from `interval` up to `max_backoff`. One commit at a time.
class CommitSchedule {
 public:
  CommitSchedule(absl::Duration interval, absl::Duration max_backoff, absl::Time now);

  // True when a commit is to start now: none in flight and its time has come.
  bool Due(absl::Time now) const { return !in_flight_ && now >= next_; }
  // A commit was sent.
  void Started() { in_flight_ = true; }
  // It was due but nothing new was acked: look again after the interval.
  void NothingToCommit(absl::Time now) { next_ = now + interval_; }
  void Succeeded(absl::Time now);
  // Returns how long until the retry.
  absl::Duration Failed(absl::Time now);

 private:
  const absl::Duration interval_;
  const absl::Duration max_backoff_;
  absl::Time next_;
  absl::Duration backoff_;
  bool in_flight_ = false;
};

// Whether Kafka is reachable, judged by news from it (records, commit results, answered
// metadata requests). Quiet is not proof of trouble, since an idle topic has no records: after
// a silence of a tenth of the timeout (100 ms to 5 s) it asks for a metadata check at that
// interval, and only silence past `unavailable_timeout` is a verdict.
class KafkaLiveness {
 public:
  KafkaLiveness(absl::Duration unavailable_timeout, absl::Time now);

  void Heard(absl::Time now) { last_contact_ = now; }

  struct Verdict {
    // Set once Kafka has been silent past the timeout: for how long.
    absl::Duration unreachable_for;
    // Otherwise, when above zero: ask Kafka for metadata now, waiting up to this long.
    absl::Duration check;
  };
  // Counts a check it asks for as made now.
  Verdict Judge(absl::Time now);

 private:
  const absl::Duration unavailable_timeout_;
  const absl::Duration check_interval_;
  absl::Time last_contact_;
  absl::Time last_check_ = absl::InfinitePast();
};

// Bounds the records (and bytes) waiting in a subscription for its app: the poll takes from
// the client only while there is room, and when the bound is reached every partition is paused
// until the queue is down to a quarter of it in records and bytes.
class FlowControl {
 public:
  // At most `max_poll` records are taken in one poll.
  FlowControl(size_t max_records, size_t max_bytes, size_t max_poll);

  // Records the next poll may take while `records` (of `bytes`) wait: 0 when full.
  size_t Room(size_t records, size_t bytes) const;

  enum class Change { kNone, kPause, kResume };
  // What to do with the partitions now that `records` (of `bytes`) wait.
  Change Update(size_t records, size_t bytes);
  bool paused() const { return paused_; }
  // True when a poll thread waiting on the queue should look again now that `records` (of
  // `bytes`) wait: there is room again, or (paused) the queue is down to where Update resumes.
  bool ShouldWake(size_t records, size_t bytes) const {
    return paused_ ? AtResumeMark(records, bytes) : Room(records, bytes) > 0;
  }

 private:
  // Paused partitions resume at a quarter of the bound, in records and in bytes.
  bool AtResumeMark(size_t records, size_t bytes) const {
    return records <= max_records_ / 4 && bytes <= max_bytes_ / 4;
  }

  const size_t max_records_;
  const size_t max_bytes_;
  const size_t max_poll_;
  bool paused_ = false;
};

// A subscription outlives its last stream by `linger` (a stream back within it rides the same
// membership: no rebalance). It starts without streams.
class Linger {
 public:
  Linger(absl::Duration linger, absl::Time now) : linger_(linger), empty_since_(now) {}

  // The last stream was judged gone at `at` (the linger counts from then).
  void LastStreamGone(absl::Time at) { empty_since_ = at; }
  // True when, with no stream now, the linger has run out.
  bool Expired(absl::Time now) const { return now - empty_since_ >= linger_; }
  absl::Duration linger() const { return linger_; }

 private:
  const absl::Duration linger_;
  absl::Time empty_since_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_SUBSCRIPTION_POLICIES_H_
