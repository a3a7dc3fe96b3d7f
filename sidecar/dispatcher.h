#ifndef KAFKA_SIDECAR_SIDECAR_DISPATCHER_H_
#define KAFKA_SIDECAR_SIDECAR_DISPATCHER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "broker/consumer.h"
#include "broker/topic_partition.h"
#include "sidecar/consumer_stream.h"
#include "sidecar/hash_ring.h"
#include "sidecar/metrics.h"

namespace kafka_sidecar::sidecar {

// How records of one subscription are spread over its streams.
enum class Ordering {
  kKey,        // by record key (partition for a null key): per-key order
  kPartition,  // by partition: per-partition order
  kNone,       // each record to the least-loaded stream: no order
};

// Spreads one subscription's records over its streams and keeps the ordering rules
// (DESIGN.md, invariant 2). Pure logic: no Kafka, no locks. Not thread-safe; the Subscription
// calls it under its mutex.
//
// With kKey or kPartition each record has a route (its key or partition). A route is pinned
// to the stream that holds its records (queued or in flight) and unpinned when that stream
// has acked them all; an unpinned route goes to its owner on the hash ring. So records of one
// route go to one stream at a time, in offset order; a stream that joins takes a route over
// only once the old owner has acked its records of it; a stream that leaves hands its in-flight
// records (delivery_attempt one higher), then its queued ones, to the routes' new owners,
// ahead of anything newer. A slow stream holds back only its own routes.
class Dispatcher {
 public:
  struct Options {
    Ordering ordering = Ordering::kKey;
    size_t max_batch_records = 500;
    size_t max_batch_bytes = 1 << 20;
  };

  Dispatcher(Options options, ConsumeMetrics& metrics);

  void AddStream(uint64_t id, ConsumerStream* stream, uint32_t max_in_flight, absl::Time now);
  // Forgets a stream; its records go to the other streams (or wait for the next one).
  void RemoveStream(uint64_t id);
  bool empty() const { return streams_.empty(); }
  std::vector<uint64_t> stream_ids() const;
  ConsumerStream* stream(uint64_t id) const;

  // A record fresh from Kafka.
  void Add(broker::Message message);

  // Acks one delivery: where the record was, or nullopt for an unknown or stale id.
  std::optional<broker::PartitionOffset> Ack(uint64_t stream, uint64_t delivery_id,
                                             absl::Time now);
  // Gives one delivery back: it goes out again before later records of its route. False for an
  // unknown or stale id.
  bool Nack(uint64_t stream, uint64_t delivery_id, absl::Time now);

  // Forgets every record of `partitions` (revoked): their acks become stale. Returns how many
  // records were dropped, in flight or waiting.
  size_t DropPartitions(const absl::flat_hash_set<broker::TopicPartition>& partitions);

  // Sends every stream what its in-flight limit allows, in batches.
  void Dispatch(absl::Time now);

  // Streams holding in-flight records that have neither acked nor nacked since `cutoff`.
  std::vector<uint64_t> InactiveSince(absl::Time cutoff) const;

  // Records waiting to be sent, and records in flight.
  size_t buffered() const { return buffered_; }
  size_t in_flight() const;

 private:
  struct Pending {
    broker::Message message;
    uint32_t attempt = 1;
    uint64_t route = 0;
  };
  struct Stream {
    ConsumerStream* stream;
    uint32_t max_in_flight;
    uint64_t next_delivery_id = 1;
    absl::flat_hash_map<uint64_t, Pending> in_flight;
    std::deque<Pending> queue;
    // The last ack or nack, or when records went out to an empty stream.
    absl::Time last_activity;
  };
  // Where a route is pinned, and how many of its records are there.
  struct Owner {
    uint64_t stream;
    uint32_t in_flight = 0;
    uint32_t queued = 0;
  };

  uint64_t RouteOf(const broker::Message& message) const;
  // Queues a record with its route's owner; `redelivery` puts it ahead of later records of
  // its partition.
  void Place(Pending pending, bool redelivery);
  // After the route's last in-flight record was acked: unpins it, or moves its queued records
  // to its ring owner if that changed.
  void Settle(uint64_t route);
  static void Enqueue(std::deque<Pending>& queue, Pending pending, bool redelivery);
  std::optional<Pending> TakeInFlight(uint64_t stream, uint64_t delivery_id);
  void RebuildOwners();

  const Options options_;
  ConsumeMetrics& metrics_;
  HashRing ring_;
  std::map<uint64_t, Stream> streams_;
  std::deque<Pending> unrouted_;  // while there is no stream
  absl::flat_hash_map<uint64_t, Owner> owners_;
  size_t buffered_ = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_DISPATCHER_H_
