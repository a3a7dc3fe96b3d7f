#include "sidecar/consume/consumer_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "proto/kafka_sidecar.pb.h"

namespace kafka_sidecar::sidecar {
namespace {

using kafka_sidecar::v1::ConsumeResponse;
using kafka_sidecar::v1::Record;

ConsumeResponse Parse(const WireResponse& response) {
  ConsumeResponse parsed;
  EXPECT_TRUE(
      parsed.ParseFromArray(response.bytes().data(), static_cast<int>(response.bytes().size())));
  return parsed;
}

broker::Message MakeMessage() {
  broker::Message m;
  m.tp = {"orders", 7};
  m.offset = 123456789012;
  m.key = "key-1";
  m.value = "a value";
  m.headers = {{"traceparent", "00-abc"}, {"empty", ""}};
  m.timestamp_ms = 1700000000000;
  return m;
}

TEST(RecordBatchEncoderTest, EncodesWhatProtobufParsesBackFieldForField) {
  RecordBatchEncoder encoder(0);
  encoder.Add(MakeMessage(), 42, 3);
  EXPECT_EQ(encoder.records(), 1);
  const ConsumeResponse parsed = Parse(std::move(encoder).Finish());
  ASSERT_TRUE(parsed.has_records());
  ASSERT_EQ(parsed.records().records_size(), 1);
  const Record& r = parsed.records().records(0);
  EXPECT_EQ(r.delivery_id(), 42u);
  EXPECT_EQ(r.topic(), "orders");
  EXPECT_EQ(r.partition(), 7);
  EXPECT_EQ(r.offset(), 123456789012);
  ASSERT_TRUE(r.has_key());
  EXPECT_EQ(r.key(), "key-1");
  EXPECT_EQ(r.value(), "a value");
  ASSERT_EQ(r.headers_size(), 2);
  EXPECT_EQ(r.headers(0).key(), "traceparent");
  EXPECT_EQ(r.headers(0).value(), "00-abc");
  EXPECT_EQ(r.headers(1).key(), "empty");
  EXPECT_EQ(r.headers(1).value(), "");
  EXPECT_EQ(r.timestamp_ms(), 1700000000000);
  EXPECT_EQ(r.delivery_attempt(), 3u);
}

TEST(RecordBatchEncoderTest, KeepsANullKeyApartFromAnEmptyOneAndNegativeNumbers) {
  broker::Message null_key = MakeMessage();
  null_key.key.reset();
  null_key.timestamp_ms = -1;  // unknown: ten bytes on the wire
  null_key.value.clear();
  null_key.headers.clear();
  broker::Message empty_key = MakeMessage();
  empty_key.key = "";
  RecordBatchEncoder encoder(0);
  encoder.Add(null_key, 1, 1);
  encoder.Add(empty_key, 2, 1);
  const ConsumeResponse parsed = Parse(std::move(encoder).Finish());
  ASSERT_EQ(parsed.records().records_size(), 2);
  EXPECT_FALSE(parsed.records().records(0).has_key());
  EXPECT_EQ(parsed.records().records(0).timestamp_ms(), -1);
  EXPECT_EQ(parsed.records().records(0).value(), "");
  EXPECT_TRUE(parsed.records().records(1).has_key());
  EXPECT_EQ(parsed.records().records(1).key(), "");
}

TEST(RecordBatchEncoderTest, MatchesProtobufsOwnBytesWhateverSizeTheLengthsTake) {
  // Values around the one- and two-byte boundaries of the lengths, and a batch past 16 KiB
  // (a three-byte length): the encoder must say exactly what protobuf would.
  for (size_t value_size : {0, 1, 100, 127, 128, 16383, 16384, 70000}) {
    RecordBatchEncoder encoder(0);
    ConsumeResponse expected;
    for (int i = 0; i < 3; ++i) {
      broker::Message m = MakeMessage();
      m.value.assign(value_size, 'v');
      m.offset = i;
      encoder.Add(m, static_cast<uint64_t>(i + 1), 1);
      Record* r = expected.mutable_records()->add_records();
      r->set_delivery_id(static_cast<uint64_t>(i + 1));
      r->set_topic(m.tp.topic);
      r->set_partition(m.tp.partition);
      r->set_offset(m.offset);
      r->set_key(*m.key);
      r->set_value(m.value);
      for (const broker::Header& h : m.headers) {
        auto* header = r->add_headers();
        header->set_key(h.key);
        header->set_value(h.value);
      }
      r->set_timestamp_ms(m.timestamp_ms);
      r->set_delivery_attempt(1);
    }
    EXPECT_EQ(std::string(std::move(encoder).Finish().bytes()), expected.SerializeAsString())
        << "values of " << value_size << " bytes";
  }
}

TEST(WireResponseTest, HandsItsBufferOverOnce) {
  WireResponse response(absl::string_view("\x12\x00", 2));
  EXPECT_EQ(response.bytes(), absl::string_view("\x12\x00", 2));
  const char* bytes = response.bytes().data();
  std::unique_ptr<char[]> buffer = response.TakeBuffer();
  EXPECT_EQ(buffer.get(), bytes);
  EXPECT_TRUE(response.bytes().empty());
  EXPECT_EQ(response.TakeBuffer(), nullptr);
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
