#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/consumer.h"

namespace kafka_sidecar::sidecar {

// One kafka_sidecar.v1.ConsumeResponse in protobuf's wire format, as gRPC sends it: a batch of
// records is encoded straight from the dispatcher's records (RecordBatchEncoder), with no
// message objects in between and one copy of each payload. The bytes live in a buffer of their
// own, which gRPC can take over and send without copying (TakeBuffer). Move-only.
class WireResponse {
 public:
  WireResponse() = default;
  // A copy of a response serialized by protobuf (the Subscribed answer, tests).
  explicit WireResponse(absl::string_view bytes);

  absl::string_view bytes() const { return absl::string_view(data_.get() + begin_, end_ - begin_); }

  // The buffer bytes() points into (null when empty); this is empty afterwards.
  std::unique_ptr<char[]> TakeBuffer() {
    begin_ = end_ = 0;
    return std::move(data_);
  }

 private:
  friend class RecordBatchEncoder;
  WireResponse(std::unique_ptr<char[]> data, size_t begin, size_t end)
      : data_(std::move(data)), begin_(begin), end_(end) {}

  std::unique_ptr<char[]> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// Encodes a ConsumeResponse holding a RecordBatch, record by record. Fields at their proto3
// default are left out, as protobuf leaves them out; a key is there whenever the record has
// one (an empty key is not a null key).
class RecordBatchEncoder {
 public:
  // Room for about `bytes_hint` bytes of records.
  explicit RecordBatchEncoder(size_t bytes_hint);

  void Add(const broker::Message& message, uint64_t delivery_id, uint32_t delivery_attempt);
  int records() const { return records_; }

  // The response; the encoder is spent.
  WireResponse Finish() &&;

 private:
  // Room kept before the records for the response's and the batch's tag and length (the
  // lengths are known only at the end): a tag byte and a length of at most 5 bytes.
  static constexpr size_t kPrefixRoom = 6;

  // Makes room for `more` bytes past size_, keeping what is there.
  void Reserve(size_t more);

  std::unique_ptr<char[]> data_;  // written up to size_: no byte is set twice
  size_t size_ = kPrefixRoom;
  size_t capacity_ = 0;
  int records_ = 0;
};

// What a Subscription needs of one app stream (ConsumeReactor; fakes in tests).
class ConsumerStream {
 public:
  virtual ~ConsumerStream() = default;

  // Queues a response carrying records for the app. Called without the subscription's lock,
  // by one thread at a time, in the order the batches were made; never after the stream was
  // detached.
  virtual void Send(WireResponse records) = 0;

  // Ends the stream with `status`. Called with the subscription's lock held: must not block and
  // must not call back into the subscription. The subscription has already let go of the stream
  // and of its in-flight records.
  virtual void End(const absl::Status& status) = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_
