#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_DISPATCHER_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_DISPATCHER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/consumer.h"
#include "broker/offset_tracker.h"
#include "broker/topic_partition.h"
#include "sidecar/common/metrics.h"
#include "sidecar/consume/consumer_stream.h"
#include "sidecar/consume/delivery_policy.h"
#include "sidecar/consume/hash_ring.h"

namespace kafka_sidecar::sidecar {

// How records of one subscription are spread over its streams.
enum class Ordering {
  kKey,        // by record key (partition for a null key): per-key order
  kPartition,  // by partition: per-partition order
  kNone,       // each record to the least-loaded stream: no order
};

// Spreads one subscription's records over its streams and keeps the ordering rules: with
// kKey or kPartition a route's records reach the app one stream at a time, in offset order, so
// per-key order holds while streams come and go. Pure logic: no Kafka, no locks. Not thread-safe; the Subscription
// calls it under its mutex.
//
// With kKey or kPartition each record has a route (its key or partition) and waits in its
// route's queue. A route is pinned to the stream that holds its records (queued or in flight)
// and unpinned when that stream has acked them all; an unpinned route goes to its owner on the
// hash ring. So records of one route go to one stream at a time, in offset order; a stream
// that joins takes a route over only once the old owner has acked its in-flight records of it;
// a stream that leaves hands its in-flight records (delivery_attempt one higher), then the
// queued ones, to the routes' new owners, ahead of anything newer. A slow stream holds back
// only its own routes. Moving a route costs only its own records: no operation scans a stream's
// records, except dropping revoked partitions.
//
// Nacked records follow the DeliveryPolicy. With a policy set (a backoff or a dead-letter
// topic), a nacked record holds its route (kKey, kPartition) until it is acked or given up on:
// it waits for its backoff in the route's queue, ahead of the route's later records, and the
// route is parked meanwhile (none of its records go out; other routes flow), and so while it
// is out again; one the policy gives up on is held for dead-lettering, its route parked, until
// the caller reports it written (DeadLettered). A waiting record holds no stream's in-flight
// slot and counts as buffered. Without a policy, a nacked record goes out again at once, ahead
// of its route's later records, which follow it.
class Dispatcher {
 public:
  struct Options {
    Ordering ordering = Ordering::kKey;
    size_t max_batch_records = 500;
    size_t max_batch_bytes = 1 << 20;
    DeliveryPolicy policy;
    // At most this many attempt counts of records dropped with revoked partitions are kept
    // (past it, such a record starts again at 1, as on another member).
    size_t max_remembered_attempts = 100000;
  };

  // A batch for one stream, to be sent by the caller.
  struct Outgoing {
    uint64_t stream_id;
    ConsumerStream* stream;
    WireResponse records;
  };

  Dispatcher(Options options, ConsumeMetrics& metrics);

  // Adds a stream (ids are nonzero and unique); records waiting for a stream go to it.
  void AddStream(uint64_t id, ConsumerStream* stream, uint32_t max_in_flight, absl::Time now);
  // Forgets a stream; its records go to the other streams (or wait for the next one).
  void RemoveStream(uint64_t id);
  bool empty() const { return streams_.empty(); }
  std::vector<uint64_t> stream_ids() const;
  ConsumerStream* stream(uint64_t id) const;

  // A record fresh from Kafka, with its partition's offsets (kept for Ack; may be null), which
  // must stay valid until DropPartitions drops the partition.
  void Add(broker::Message message, broker::PartitionOffsets* offsets = nullptr);

  // An acked record: its offset, and its partition's offsets as Add was given them.
  struct Acked {
    broker::PartitionOffsets* offsets;
    int64_t offset;
  };
  // Acks one delivery, or nullopt for an unknown or stale id.
  std::optional<Acked> Ack(uint64_t stream, uint64_t delivery_id, absl::Time now);
  // What became of a nacked delivery.
  enum class NackOutcome {
    kStale,       // an unknown or stale id: nothing changed
    kRetry,       // it goes out again before later records of its route, after its backoff
    kDeadLetter,  // the policy gives it up: held for dead-lettering, its `ticket` set
  };
  // Gives one delivery back; `dead_letter`: the app asks to give it up (with a dead-letter
  // topic in the policy).
  NackOutcome Nack(uint64_t stream, uint64_t delivery_id, bool dead_letter, absl::Time now,
                   uint64_t* ticket = nullptr);

  // A record held for dead-lettering and its deliveries so far; nullptr once its partition was
  // revoked (then nothing more is to be done with it).
  const broker::Message* DeadLetter(uint64_t ticket, uint32_t* attempts) const;
  // The record was written to the dead-letter topic: it counts as acked (returns where it was;
  // nullopt once its partition was revoked) and its route goes on.
  std::optional<broker::PartitionOffset> DeadLettered(uint64_t ticket);

  // When the first record waiting for its retry is due (InfiniteFuture: none waits); Dispatch
  // sends it from then on.
  absl::Time NextRetry() const;

  // Forgets every record of `partitions` (revoked): their acks become stale. Returns how many
  // records were dropped, in flight or waiting.
  size_t DropPartitions(const absl::flat_hash_set<broker::TopicPartition>& partitions);

  // Moves what every stream's in-flight limit allows into batches, appended to `out`, once the
  // records whose retry is due at `now` rejoined their routes. The
  // records count as in flight from now on; the caller sends the batches in their order
  // (after unlocking: serializing a batch is the costly part) and drops those of a stream it
  // removes meanwhile.
  void Dispatch(absl::Time now, std::deque<Outgoing>& out);

  // Streams holding in-flight records that have neither acked nor nacked since `cutoff`.
  std::vector<uint64_t> InactiveSince(absl::Time cutoff) const;

  // Records waiting to be sent (and their approximate size in bytes), and records in flight.
  size_t buffered() const { return buffered_; }
  size_t buffered_bytes() const { return buffered_bytes_; }
  size_t in_flight() const { return in_flight_; }
  // Nacked records waiting for their retry, and records held for dead-lettering.
  size_t waiting_retry() const { return retries_.size() + none_retries_.size(); }
  size_t dead_lettering() const { return dead_letters_.size(); }

 private:
  struct Pending {
    broker::Message message;
    broker::PartitionOffsets* offsets = nullptr;  // as Add was given them
    uint32_t attempt = 1;
    uint32_t bytes = 0;  // RecordBytes
    uint64_t route = 0;
    // Nacked under a delivery policy: until it is acked or given up on, its route sends nothing
    // after it.
    bool holds_route = false;
  };

  // Records waiting, oldest first: a vector with a moving head, one allocation while short,
  // whose front a redelivery can go into without moving the rest.
  class Queue {
   public:
    bool empty() const { return head_ == items_.size(); }
    size_t size() const { return items_.size() - head_; }
    Pending& front() { return items_[head_]; }
    // Drops the front, typically moved from already.
    void PopFront();
    void PushBack(Pending pending) { items_.push_back(std::move(pending)); }
    // A new record at the back, to be filled in where it waits.
    Pending& EmplaceBack() { return items_.emplace_back(); }
    void PushFront(Pending pending);
    // Before the first later record of its partition (redeliveries placed in order stay in
    // order), else at the back.
    void PushRedelivery(Pending pending);
    // Removes the records `drop` picks; returns how many, and their bytes in `bytes`.
    template <typename Pred>
    size_t EraseIf(Pred drop, size_t& bytes);
    // Moves everything out, oldest first.
    std::vector<Pending> TakeAll();

   private:
    std::vector<Pending> items_;
    size_t head_ = 0;
  };

  // A route's state. `stream` 0: no stream (there is none yet).
  struct Route {
    uint64_t stream = 0;
    uint32_t in_flight = 0;
    Queue queued;
    uint64_t seq = 0;  // new whenever the route changes stream: older Ready entries are stale
    // Parked: its queued records are not listed with a stream until its front record's retry
    // is due (`retry_at`) and none of its records is being dead-lettered.
    absl::Time retry_at = absl::InfinitePast();
    uint32_t dead_lettering = 0;
    bool retry_in_flight = false;  // a record that holds the route is out again
    bool parked() const {
      return retry_at != absl::InfinitePast() || dead_lettering > 0 || retry_in_flight;
    }
  };
  // A record held for dead-lettering, and its route (kKey, kPartition).
  struct Held {
    Pending pending;
    uint64_t route = 0;
  };
  // One queued record of `route`, in its owner's list in arrival order: the stream sends the
  // route's oldest record when the entry comes up. Records thus go out oldest first across
  // routes, which keeps each partition's commit point moving.
  struct Ready {
    uint64_t route;
    uint64_t seq;
  };
  struct Stream {
    ConsumerStream* stream;
    uint32_t max_in_flight;
    uint64_t next_delivery_id = 1;
    absl::flat_hash_map<uint64_t, Pending> in_flight;
    // kKey, kPartition: an entry per queued record of the routes it owns.
    std::deque<Ready> ready;
    // kNone: the records sent to this stream.
    Queue queued;
    // The last ack or nack, or when records went out to an empty stream.
    absl::Time last_activity;
  };

  uint64_t RouteOf(const broker::Message& message);
  // Lists `count` records of `route` with its owner (or as waiting for a stream), at the
  // front of the list or at its back.
  void List(uint64_t route_id, const Route& route, size_t count, bool front);
  // Moves `route` (with its queued records) to `stream`; 0: its ring owner (none without
  // streams). Redeliveries go to the front of the new owner's list. A parked route's records
  // are listed only when it is released.
  void MoveRoute(uint64_t route_id, Route& route, uint64_t stream);
  // Lists a route that is no longer parked with its owner: the stream holding its in-flight
  // records, else its ring owner. Forgets it when it holds nothing.
  void Release(uint64_t route_id, Route& route);
  // Forgets the route's waiting retry, if any.
  void CancelRetry(uint64_t route_id, Route& route);
  // Sends records whose retry is due at `now` back to their routes (or streams, kNone).
  void ReleaseDueRetries(absl::Time now);
  // The attempt a record fresh from Kafka is on: more than 1 when this dispatcher delivered it
  // before its partition was revoked (and now it came back).
  uint32_t RecallAttempt(const broker::Message& message);
  // Remembers, for a record dropped with its partition, the attempt it would be delivered on.
  void RememberAttempt(const Pending& pending, uint32_t next_attempt);
  // kNone: the stream with the fewest records, or nullptr without streams.
  Stream* LeastLoaded();
  // The next record for `stream` (and its route, for kKey and kPartition), or nullptr.
  Pending* PeekNext(Stream& stream, Route*& route);
  // Fills one batch for `stream` within its limits; false when there was nothing to send.
  bool FillBatch(uint64_t id, Stream& stream, absl::Time now, std::deque<Outgoing>& out);
  std::optional<Pending> TakeInFlight(uint64_t stream, uint64_t delivery_id);

  const Options options_;
  ConsumeMetrics& metrics_;
  HashRing ring_;
  std::map<uint64_t, Stream> streams_;
  absl::flat_hash_map<uint64_t, Route> routes_;
  std::deque<Ready> unowned_;  // records of routes while there is no stream
  // Parked routes by when their retry is due (kKey, kPartition), and kNone's waiting records.
  std::multimap<absl::Time, uint64_t> retries_;
  std::multimap<absl::Time, Pending> none_retries_;
  absl::flat_hash_map<uint64_t, Held> dead_letters_;  // by ticket
  uint64_t next_ticket_ = 1;
  // Per partition revoked with records delivered and not acked: offset -> the attempt it
  // would be delivered on next, should the partition come back.
  absl::flat_hash_map<broker::TopicPartition, std::map<int64_t, uint32_t>> remembered_;
  size_t remembered_count_ = 0;
  Queue unrouted_;             // kNone: records while there is no stream
  uint64_t next_seq_ = 1;
  size_t buffered_ = 0;
  size_t buffered_bytes_ = 0;
  size_t in_flight_ = 0;
  // The last topic routed and its hash: records come in runs of one partition.
  std::string last_topic_;
  uint64_t last_topic_hash_ = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_DISPATCHER_H_
