// The two produce streams' logic, without gRPC or Kafka: each reactor runs on a fake gRPC stream
// (the test completes its reads and writes) and a fake producer (the test answers its records).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/common/metrics.h"
#include "sidecar/rpc/produce_batch_reactor.h"
#include "sidecar/rpc/produce_stream_reactor.h"
#include "sidecar/rpc/produce_stream_registry.h"
#include "testing/fake_producer.h"
#include "testing/fake_server_stream.h"

namespace kafka_sidecar::sidecar {
namespace {

using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceBatchResult;
using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeProducer;
using testing::FakeServerStream;

ProduceRequest Record(uint64_t id, std::string topic = "orders") {
  ProduceRequest request;
  request.set_request_id(id);
  request.set_topic(std::move(topic));
  request.set_key("key-" + std::to_string(id));
  request.set_value("value-" + std::to_string(id));
  return request;
}

ProduceBatch Batch(uint64_t id, const std::vector<ProduceRequest>& records) {
  ProduceBatch batch;
  batch.set_batch_id(id);
  for (const ProduceRequest& record : records) *batch.add_records() = record;
  return batch;
}

// What each response says, in order: "id@offset" or "id:code".
template <typename Responses>
std::vector<std::string> Summaries(const Responses& responses) {
  std::vector<std::string> out;
  for (const ProduceResponse& r : responses) {
    out.push_back(r.has_error() ? std::to_string(r.request_id()) + ":" +
                                      std::to_string(r.error().code())
                                : std::to_string(r.request_id()) + "@" + std::to_string(r.offset()));
  }
  return out;
}

class ProduceReactorTest : public ::testing::Test {
 protected:
  ~ProduceReactorTest() override { EXPECT_EQ(metrics_.pending_records, 0); }

  FakeProducer producer_;
  ProduceMetrics metrics_;
  ProduceStreamRegistry registry_;
};

TEST_F(ProduceReactorTest, StreamAnswersEachRecordInTheOrderKafkaDoes) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Record(7));
  stream.Deliver(Record(8, "payments"));
  ASSERT_EQ(producer_.records().size(), 2);
  EXPECT_EQ(producer_.records()[1].topic, "payments");
  EXPECT_EQ(producer_.records()[1].key, "key-8");
  EXPECT_EQ(metrics_.pending_records, 2);

  producer_.Answer(1, absl::OkStatus());
  std::optional<ProduceResponse> first = stream.NextResponse<ProduceResponse>();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->request_id(), 8);
  EXPECT_EQ(first->topic(), "payments");
  EXPECT_EQ(first->offset(), 1);
  producer_.Answer(0, absl::NotFoundError("no such topic"));
  std::optional<ProduceResponse> second = stream.NextResponse<ProduceResponse>();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->request_id(), 7);
  EXPECT_EQ(second->error().code(), grpc::StatusCode::NOT_FOUND);

  stream.HalfClose();
  std::optional<grpc::Status> end = stream.status();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << end->error_message();
}

TEST_F(ProduceReactorTest, StreamStopsReadingAtMaxPendingUntilAnAnswerIsWritten) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 2, metrics_, registry_));
  stream.Deliver(Record(1));
  EXPECT_TRUE(stream.reading());
  stream.Deliver(Record(2));
  EXPECT_FALSE(stream.reading()) << "two records wait for Kafka: the window is full";

  producer_.Answer(0, absl::OkStatus());
  EXPECT_FALSE(stream.reading()) << "an answer still being written counts as pending";
  stream.CompleteWrite();
  EXPECT_TRUE(stream.reading());

  producer_.Answer(1, absl::OkStatus());
  stream.CompleteWrite();
  stream.HalfClose();
  EXPECT_TRUE(stream.status().has_value());
}

TEST_F(ProduceReactorTest, StreamAnswersABadRecordItselfAndGoesOn) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Record(1, ".."));
  std::optional<ProduceResponse> refused = stream.NextResponse<ProduceResponse>();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused->error().message(), HasSubstr("topic"));
  EXPECT_TRUE(producer_.records().empty());

  stream.Deliver(Record(2));
  producer_.Answer(0, absl::OkStatus());
  std::optional<ProduceResponse> produced = stream.NextResponse<ProduceResponse>();
  ASSERT_TRUE(produced.has_value());
  EXPECT_FALSE(produced->has_error());
  stream.HalfClose();
  EXPECT_TRUE(stream.status().has_value());
}

TEST_F(ProduceReactorTest, GarbageBytesEndTheStreamWithInvalidArgumentAfterTheAcceptedAnswers) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Record(1));
  stream.DeliverBytes("\xff\xff\xff");
  EXPECT_FALSE(stream.status().has_value()) << "record 1 is not answered yet";
  producer_.Answer(0, absl::OkStatus());
  ASSERT_TRUE(stream.NextResponse<ProduceResponse>().has_value());
  std::optional<grpc::Status> end = stream.status();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(end->error_message(), HasSubstr("kafka_sidecar.v1.ProduceRequest"));
}

TEST_F(ProduceReactorTest, DrainingStopsReadingAndEndsUnavailableOnceAnswered) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Record(1));
  registry_.DrainAll();
  EXPECT_FALSE(stream.status().has_value());
  producer_.Answer(0, absl::OkStatus());
  ASSERT_TRUE(stream.NextResponse<ProduceResponse>().has_value());
  std::optional<grpc::Status> end = stream.status();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  // The read still in flight fails when the call ends: it reaches no producer.
  stream.End();
  EXPECT_EQ(producer_.records().size(), 1);
}

TEST_F(ProduceReactorTest, AStreamOpenedWhileDrainingRefusesWhatItReads) {
  registry_.DrainAll();
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  EXPECT_FALSE(stream.reading());
  std::optional<grpc::Status> end = stream.status();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ProduceReactorTest, AFailedWriteDropsTheAnswersAndEndsOnceKafkaAnsweredAll) {
  FakeServerStream stream(new ProduceStreamReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Record(1));
  stream.Deliver(Record(2));
  stream.Deliver(Record(3));
  producer_.Answer(0, absl::OkStatus());
  producer_.Answer(1, absl::OkStatus());
  stream.CompleteWrite(/*ok=*/false);
  EXPECT_FALSE(stream.writing<ProduceResponse>().has_value()) << "record 2's answer is dropped";
  EXPECT_FALSE(stream.status().has_value()) << "record 3 still waits for Kafka";
  producer_.Answer(2, absl::OkStatus());
  EXPECT_TRUE(stream.status().has_value());
}

TEST_F(ProduceReactorTest, BatchResultListsEveryRecordInBatchOrderAndABadOneFailsAlone) {
  FakeServerStream stream(new ProduceBatchReactor(producer_, 10, metrics_, registry_));
  stream.Deliver(Batch(42, {Record(1), Record(2, ""), Record(3)}));
  ASSERT_EQ(producer_.records().size(), 2) << "the record with no topic never reaches Kafka";
  producer_.Answer(1, absl::OkStatus());
  EXPECT_FALSE(stream.writing<ProduceBatchResult>().has_value()) << "record 1 is not answered";
  producer_.Answer(0, absl::OkStatus());
  std::optional<ProduceBatchResult> result = stream.NextResponse<ProduceBatchResult>();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->batch_id(), 42);
  EXPECT_THAT(Summaries(result->results()),
              ElementsAre("1@0", "2:" + std::to_string(grpc::StatusCode::INVALID_ARGUMENT),
                          "3@1"));
  stream.HalfClose();
  EXPECT_TRUE(stream.status().has_value());
}

TEST_F(ProduceReactorTest, BatchWindowCountsRecordsAndNeverSplitsABatch) {
  FakeServerStream stream(new ProduceBatchReactor(producer_, 3, metrics_, registry_));
  stream.Deliver(Batch(1, {Record(1), Record(2)}));
  EXPECT_TRUE(stream.reading()) << "2 of 3 pending";
  stream.Deliver(Batch(2, {Record(3), Record(4), Record(5)}));
  EXPECT_FALSE(stream.reading()) << "5 pending: past the window, the whole batch was taken";
  EXPECT_EQ(metrics_.pending_records, 5);

  for (size_t i = 2; i < 5; ++i) producer_.Answer(i, absl::OkStatus());
  std::optional<ProduceBatchResult> second = stream.NextResponse<ProduceBatchResult>();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->batch_id(), 2) << "results go out in the order batches complete";
  EXPECT_TRUE(stream.reading()) << "2 pending again";

  // A batch larger than the window is still taken when fewer than the window are pending.
  stream.Deliver(Batch(3, {Record(6), Record(7), Record(8), Record(9)}));
  EXPECT_FALSE(stream.reading());
  for (size_t i = 0; i < 2; ++i) producer_.Answer(i, absl::OkStatus());
  ASSERT_TRUE(stream.NextResponse<ProduceBatchResult>().has_value());
  for (size_t i = 5; i < 9; ++i) producer_.Answer(i, absl::OkStatus());
  ASSERT_TRUE(stream.NextResponse<ProduceBatchResult>().has_value());
  stream.HalfClose();
  EXPECT_TRUE(stream.status().has_value());
}

TEST_F(ProduceReactorTest, RecordsCarryTheCallsTraceContextUnlessTheyHaveTheirOwn) {
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const TraceContext trace = TraceContext::FromMetadata(traceparent, "congo=t61rcWkgMzE");
  ProduceRequest own = Record(2);
  auto* header = own.add_headers();
  header->set_key("traceparent");
  header->set_value("00-11111111111111111111111111111111-2222222222222222-01");
  {
    FakeServerStream stream(
        new ProduceBatchReactor(producer_, 10, metrics_, registry_, trace));
    stream.Deliver(Batch(1, {Record(1), own, Record(3)}));
    for (size_t i = 0; i < 3; ++i) producer_.Answer(i, absl::OkStatus());
    ASSERT_TRUE(stream.NextResponse<ProduceBatchResult>().has_value());
    stream.HalfClose();
  }
  {
    FakeServerStream stream(
        new ProduceStreamReactor(producer_, 10, metrics_, registry_, trace));
    stream.Deliver(Record(4));
    producer_.Answer(3, absl::OkStatus());
    ASSERT_TRUE(stream.NextResponse<ProduceResponse>().has_value());
    stream.HalfClose();
  }
  const std::vector<FakeProducer::Record> records = producer_.records();
  ASSERT_EQ(records.size(), 4u);
  for (size_t i : {0, 2, 3}) {
    ASSERT_EQ(records[i].headers.size(), 2u) << i;
    EXPECT_EQ(records[i].headers[0].key, "traceparent");
    EXPECT_EQ(records[i].headers[0].value, traceparent);
    EXPECT_EQ(records[i].headers[1].key, "tracestate");
    EXPECT_EQ(records[i].headers[1].value, "congo=t61rcWkgMzE");
  }
  ASSERT_EQ(records[1].headers.size(), 1u) << "a record with its own traceparent keeps it alone";
  EXPECT_EQ(records[1].headers[0].value, header->value());
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
