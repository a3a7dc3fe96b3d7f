#include "sidecar/consume/consumer_stream.h"

#include <algorithm>
#include <cstring>

namespace kafka_sidecar::sidecar {
namespace {

// Protobuf's wire format (https://protobuf.dev/programming-guides/encoding/), for the fields
// of kafka_sidecar.v1.ConsumeResponse, RecordBatch, Record and Header.
enum WireType : uint8_t { kVarint = 0, kLength = 2 };

constexpr uint8_t Tag(int field, WireType type) { return static_cast<uint8_t>(field << 3 | type); }

size_t VarintSize(uint64_t v) {
  size_t size = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++size;
  }
  return size;
}

// int32 and int64 fields: a negative value takes ten bytes, sign-extended.
uint64_t SignExtended(int64_t v) { return static_cast<uint64_t>(v); }

size_t VarintFieldSize(uint64_t v) { return v == 0 ? 0 : 1 + VarintSize(v); }
size_t LengthFieldSize(size_t length) { return 1 + VarintSize(length) + length; }
size_t BytesFieldSize(absl::string_view s) { return s.empty() ? 0 : LengthFieldSize(s.size()); }

char* PutVarint(char* out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}

char* PutVarintField(char* out, int field, uint64_t v) {
  if (v == 0) return out;
  *out++ = static_cast<char>(Tag(field, kVarint));
  return PutVarint(out, v);
}

char* PutLength(char* out, int field, size_t length) {
  *out++ = static_cast<char>(Tag(field, kLength));
  return PutVarint(out, length);
}

char* PutBytes(char* out, absl::string_view s) {
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

char* PutBytesField(char* out, int field, absl::string_view s) {
  if (s.empty()) return out;
  return PutBytes(PutLength(out, field, s.size()), s);
}

size_t HeaderSize(const broker::Header& h) {
  return BytesFieldSize(h.key) + BytesFieldSize(h.value);
}

// Record's fields, as numbered in proto/kafka_sidecar.proto.
enum RecordField {
  kDeliveryId = 1,
  kTopic = 2,
  kPartition = 3,
  kOffset = 4,
  kKey = 5,
  kValue = 6,
  kHeaders = 7,
  kTimestampMs = 8,
  kDeliveryAttempt = 9,
};
constexpr int kResponseRecords = 2;  // ConsumeResponse.records (a RecordBatch)
constexpr int kBatchRecords = 1;     // RecordBatch.records
constexpr int kHeaderKey = 1;        // Header.key
constexpr int kHeaderValue = 2;      // Header.value

}  // namespace

WireResponse::WireResponse(absl::string_view bytes)
    : data_(new char[bytes.size()]), begin_(0), end_(bytes.size()) {
  PutBytes(data_.get(), bytes);
}

RecordBatchEncoder::RecordBatchEncoder(size_t bytes_hint) { Reserve(bytes_hint); }

void RecordBatchEncoder::Reserve(size_t more) {
  if (size_ + more <= capacity_) return;
  const size_t capacity = std::max(size_ + more, 2 * capacity_);
  std::unique_ptr<char[]> grown(new char[capacity]);
  if (data_ != nullptr) std::memcpy(grown.get(), data_.get(), size_);
  data_ = std::move(grown);
  capacity_ = capacity;
}

void RecordBatchEncoder::Add(const broker::Message& m, uint64_t delivery_id,
                             uint32_t delivery_attempt) {
  size_t size = VarintFieldSize(delivery_id) + BytesFieldSize(m.tp.topic) +
                VarintFieldSize(SignExtended(m.tp.partition)) +
                VarintFieldSize(SignExtended(m.offset)) + BytesFieldSize(m.value) +
                VarintFieldSize(SignExtended(m.timestamp_ms)) + VarintFieldSize(delivery_attempt);
  if (m.key.has_value()) size += LengthFieldSize(m.key->size());
  for (const broker::Header& h : m.headers) size += LengthFieldSize(HeaderSize(h));

  const size_t encoded = 1 + VarintSize(size) + size;
  Reserve(encoded);
  char* out = PutLength(data_.get() + size_, kBatchRecords, size);
  out = PutVarintField(out, kDeliveryId, delivery_id);
  out = PutBytesField(out, kTopic, m.tp.topic);
  out = PutVarintField(out, kPartition, SignExtended(m.tp.partition));
  out = PutVarintField(out, kOffset, SignExtended(m.offset));
  if (m.key.has_value()) out = PutBytes(PutLength(out, kKey, m.key->size()), *m.key);
  out = PutBytesField(out, kValue, m.value);
  for (const broker::Header& h : m.headers) {
    out = PutLength(out, kHeaders, HeaderSize(h));
    out = PutBytesField(out, kHeaderKey, h.key);
    out = PutBytesField(out, kHeaderValue, h.value);
  }
  out = PutVarintField(out, kTimestampMs, SignExtended(m.timestamp_ms));
  PutVarintField(out, kDeliveryAttempt, delivery_attempt);
  size_ += encoded;
  ++records_;
}

WireResponse RecordBatchEncoder::Finish() && {
  // The response's one field, its RecordBatch: its tag and length end where the records begin.
  const size_t batch = size_ - kPrefixRoom;
  const size_t begin = kPrefixRoom - 1 - VarintSize(batch);
  PutLength(data_.get() + begin, kResponseRecords, batch);
  return WireResponse(std::move(data_), begin, size_);
}

}  // namespace kafka_sidecar::sidecar
