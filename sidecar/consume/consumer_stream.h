#ifndef KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_
#define KAFKA_SIDECAR_SIDECAR_CONSUME_CONSUMER_STREAM_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/consumer.h"

namespace kafka_sidecar::sidecar {

// One kafka_sidecar.v1.ConsumeResponse in protobuf's wire format, as gRPC sends it: a batch of
// records is encoded straight from the dispatcher's records (RecordBatchEncoder), with no
// message objects in between and one copy of each payload. The bytes live on the heap, so that
// gRPC can send them without copying (TakeBuffer). Move-only.
class WireResponse {
 public:
  WireResponse() = default;
  // A response serialized by protobuf (the Subscribed answer, tests).
  explicit WireResponse(std::string bytes)
      : buffer_(std::make_unique<std::string>(std::move(bytes))) {}

  absl::string_view bytes() const {
    if (buffer_ == nullptr) return {};
    return absl::string_view(*buffer_).substr(begin_);
  }

  // The buffer and where in it the response begins; this is empty afterwards.
  std::unique_ptr<std::string> TakeBuffer(size_t& begin) {
    begin = begin_;
    begin_ = 0;
    return std::move(buffer_);
  }

 private:
  friend class RecordBatchEncoder;
  WireResponse(std::unique_ptr<std::string> buffer, size_t begin)
      : buffer_(std::move(buffer)), begin_(begin) {}

  std::unique_ptr<std::string> buffer_;
  size_t begin_ = 0;
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

  std::unique_ptr<std::string> buffer_;
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
