#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_

#include <google/protobuf/arena.h>

#include <memory>

#include "absl/status/status.h"
#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {

// One ConsumeResponse and the arena that holds it: a batch of records costs a few block
// allocations instead of several per record. Move-only.
class ArenaResponse {
 public:
  // An empty response on a new arena sized for about `bytes_hint` bytes of records.
  explicit ArenaResponse(size_t bytes_hint = 0);

  kafka_sidecar::v1::ConsumeResponse& operator*() { return *response_; }
  kafka_sidecar::v1::ConsumeResponse* operator->() { return response_; }
  kafka_sidecar::v1::ConsumeResponse* get() { return response_; }

 private:
  std::unique_ptr<google::protobuf::Arena> arena_;
  kafka_sidecar::v1::ConsumeResponse* response_;  // on arena_
};

// What a Subscription needs of one app stream (ConsumeReactor; fakes in tests).
class ConsumerStream {
 public:
  virtual ~ConsumerStream() = default;

  // Queues a response carrying records for the app. Called without the subscription's lock,
  // by one thread at a time, in the order the batches were made; never after the stream was
  // detached.
  virtual void Send(ArenaResponse records) = 0;

  // Ends the stream with `status`. Called with the subscription's lock held: must not block and
  // must not call back into the subscription. The subscription has already let go of the stream
  // and of its in-flight records.
  virtual void End(const absl::Status& status) = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_
