// Produce end to end: a real gRPC client, the real sidecar server and librdkafka producer, and
// the embedded Kafka cluster; what arrived in Kafka is read back by a plain librdkafka consumer.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/produce_stream_client.h"
#include "testing/raw_call.h"
#include "testing/sidecar_harness.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceBatchResult;
using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using ::testing::HasSubstr;

constexpr int kPartitions = 6;
constexpr absl::Duration kReadTimeout = absl::Seconds(30);
constexpr size_t kMiB = 1 << 20;

grpc::StatusCode CodeOf(const ProduceResponse& response) {
  return response.has_error() ? static_cast<grpc::StatusCode>(response.error().code())
                              : grpc::StatusCode::OK;
}

// The value of an unlabelled sample on a /metrics page; -1 when it is not there.
int64_t MetricValue(const std::string& page, const std::string& name) {
  const std::string prefix = name + " ";
  size_t at = page.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  at += 1 + prefix.size();
  int64_t value = -1;
  if (!absl::SimpleAtoi(page.substr(at, page.find('\n', at) - at), &value)) return -1;
  return value;
}

class ProduceIntegrationTest : public ::testing::Test {
 protected:
  // The producer gets message.max.bytes=10000 unless `options` sets it.
  void StartSidecar(SidecarHarness::Options options = {}) {
    bool sized = false;
    for (const auto& [name, value] : options.kafka_settings) sized |= name == "message.max.bytes";
    options.kafka_settings.emplace_back("topic.metadata.propagation.max.ms", "1000");
    if (!sized) options.kafka_settings.emplace_back("message.max.bytes", "10000");
    absl::StatusOr<std::unique_ptr<SidecarHarness>> harness =
        SidecarHarness::Start(std::move(options));
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = *std::move(harness);
  }

  void CreateTopic(const std::string& topic) {
    ASSERT_TRUE(harness_->cluster().CreateTopic(topic, kPartitions).ok());
  }

  static ProduceRequest Request(const std::string& topic, uint64_t id) {
    ProduceRequest request;
    request.set_topic(topic);
    request.set_request_id(id);
    request.set_key(absl::StrCat("key-", id % 17));
    request.set_value(absl::StrCat("value-", id));
    return request;
  }

  grpc::Status ProduceOne(const ProduceRequest& request, ProduceResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return harness_->stub().Produce(&context, request, response);
  }

  // Scrapes /metrics until `metric` is at least `min` or `timeout` passes; its last value.
  // (Each scrape is a round trip to the sidecar.)
  int64_t ScrapeUntilAtLeast(const std::string& metric, int64_t min, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    const int port = harness_->server().metrics_port();
    int64_t value = MetricValue(HttpGet(port, "/metrics").second, metric);
    while (value < min && absl::Now() < deadline) {
      value = MetricValue(HttpGet(port, "/metrics").second, metric);
    }
    return value;
  }

  // Produces one record so the producer knows the topic before brokers go down.
  void WarmUp(const std::string& topic) {
    ProduceResponse response;
    ASSERT_TRUE(ProduceOne(Request(topic, 0), &response).ok());
  }

  std::unique_ptr<SidecarHarness> harness_;
};

TEST_F(ProduceIntegrationTest, ProduceKeepsKeyValueHeadersAndPartition) {
  StartSidecar();
  CreateTopic("unary");
  std::vector<ProduceRequest> requests(4);
  requests[0].set_key("user-1");
  requests[0].set_value("hello");
  auto* header = requests[0].add_headers();
  header->set_key("trace");
  header->set_value(std::string("a\0b", 3));
  requests[1].set_value("null key");  // key unset
  requests[2].set_key("");            // empty, not null
  requests[2].set_value("empty key");
  requests[3].set_key("pinned");
  requests[3].set_value(std::string("\x00\xff binary", 9));
  requests[3].set_partition(5);

  std::vector<ProduceResponse> responses(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].set_topic("unary");
    requests[i].set_request_id(100 + i);
    grpc::Status status = ProduceOne(requests[i], &responses[i]);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(responses[i].request_id(), 100 + i);
    EXPECT_EQ(responses[i].topic(), "unary");
    EXPECT_FALSE(responses[i].has_error());
  }
  EXPECT_EQ(responses[3].partition(), 5);

  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(harness_->bootstrap(), "unary", requests.size(), kReadTimeout);
  ASSERT_TRUE(read.ok()) << read.status();
  for (size_t i = 0; i < requests.size(); ++i) {
    const ConsumedRecord* found = nullptr;
    for (const ConsumedRecord& record : *read) {
      if (record.partition == responses[i].partition() &&
          record.offset == responses[i].offset()) {
        found = &record;
      }
    }
    ASSERT_NE(found, nullptr) << "no record at the answered partition/offset for " << i;
    EXPECT_EQ(found->value, requests[i].value());
    EXPECT_EQ(found->key.has_value(), requests[i].has_key()) << i;
    if (requests[i].has_key()) {
      EXPECT_EQ(*found->key, requests[i].key());
    }
  }
  const ConsumedRecord* first = nullptr;
  for (const ConsumedRecord& record : *read) {
    if (record.value == "hello") first = &record;
  }
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(first->headers.size(), 1u);
  EXPECT_EQ(first->headers[0].first, "trace");
  EXPECT_EQ(first->headers[0].second, std::string("a\0b", 3));
}

TEST_F(ProduceIntegrationTest, AW3CTraceContextInTheCallsMetadataBecomesRecordHeaders) {
  StartSidecar();
  CreateTopic("traced");
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ProduceRequest unary = Request("traced", 1);
  ProduceResponse answer;
  {
    grpc::ClientContext context;
    context.AddMetadata("traceparent", traceparent);
    context.AddMetadata("tracestate", "congo=t61rcWkgMzE");
    ASSERT_TRUE(harness_->stub().Produce(&context, unary, &answer).ok());
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("traceparent", traceparent);
    auto stream = harness_->stub().ProduceBatchStream(&context);
    ProduceBatch batch;
    *batch.add_records() = Request("traced", 2);
    ASSERT_TRUE(stream->Write(batch));
    stream->WritesDone();
    ProduceBatchResult result;
    ASSERT_TRUE(stream->Read(&result));
    ASSERT_FALSE(result.results(0).has_error());
    ASSERT_TRUE(stream->Finish().ok());
  }
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(harness_->bootstrap(), "traced", 2, kReadTimeout);
  ASSERT_TRUE(read.ok()) << read.status();
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> headers;
  for (const ConsumedRecord& record : *read) headers[record.value] = record.headers;
  using Headers = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(headers["value-1"],
            (Headers{{"traceparent", traceparent}, {"tracestate", "congo=t61rcWkgMzE"}}));
  EXPECT_EQ(headers["value-2"], (Headers{{"traceparent", traceparent}}));
}

TEST_F(ProduceIntegrationTest, ProduceStreamAnswersEveryRecordWithItsKafkaOffset) {
  StartSidecar();
  CreateTopic("stream");
  constexpr int kRecords = 2000;
  std::vector<ProduceRequest> requests;
  for (int i = 1; i <= kRecords; ++i) {
    ProduceRequest request = Request("stream", i);
    if (i % 10 == 0) request.clear_key();
    if (i % 10 == 1) request.set_key("");
    if (i % 7 == 0) request.set_partition(i % kPartitions);
    auto* header = request.add_headers();
    header->set_key("id");
    header->set_value(absl::StrCat(i));
    requests.push_back(request);
  }
  ProduceStreamResult result = RunProduceStream(harness_->stub(), requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), requests.size());

  absl::flat_hash_map<uint64_t, ProduceResponse> by_id;
  for (const ProduceResponse& response : result.responses) {
    EXPECT_FALSE(response.has_error()) << response.error().message();
    EXPECT_TRUE(by_id.emplace(response.request_id(), response).second)
        << "two answers for " << response.request_id();
  }
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(harness_->bootstrap(), "stream", kRecords, kReadTimeout);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), static_cast<size_t>(kRecords));
  for (const ConsumedRecord& record : *read) {
    ASSERT_EQ(record.headers.size(), 1u);
    const uint64_t id = std::stoull(record.headers[0].second);
    const ProduceRequest& request = requests[id - 1];
    auto it = by_id.find(id);
    ASSERT_NE(it, by_id.end()) << "record " << id << " in Kafka without an answer";
    EXPECT_EQ(it->second.partition(), record.partition) << id;
    EXPECT_EQ(it->second.offset(), record.offset) << id;
    EXPECT_EQ(record.value, request.value());
    EXPECT_EQ(record.key.has_value(), request.has_key()) << id;
    if (request.has_key()) {
      EXPECT_EQ(*record.key, request.key()) << id;
    }
    if (request.has_partition()) {
      EXPECT_EQ(record.partition, request.partition()) << id;
    }
  }
}

TEST_F(ProduceIntegrationTest, BadUnaryRequestsGetTheirStatus) {
  StartSidecar();
  CreateTopic("good");
  harness_->cluster().SetTopicError("missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  struct Case {
    std::string name;
    ProduceRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"empty topic", Request("", 1), grpc::StatusCode::INVALID_ARGUMENT, "topic"});
  cases.push_back(
      {"bad topic name", Request("a b", 2), grpc::StatusCode::INVALID_ARGUMENT, "topic"});
  cases.push_back({"dot topic", Request(".", 2), grpc::StatusCode::INVALID_ARGUMENT, "topic"});
  cases.push_back({"dot-dot topic", Request("..", 2), grpc::StatusCode::INVALID_ARGUMENT, "topic"});
  ProduceRequest big = Request("good", 3);
  big.set_value(std::string(20000, 'x'));
  cases.push_back({"too large", big, grpc::StatusCode::INVALID_ARGUMENT, "message.max.bytes"});
  ProduceRequest no_partition = Request("good", 4);
  no_partition.set_partition(99);
  cases.push_back({"no such partition", no_partition, grpc::StatusCode::NOT_FOUND, "partition 99"});
  ProduceRequest negative = Request("good", 5);
  negative.set_partition(-2);
  cases.push_back({"negative partition", negative, grpc::StatusCode::INVALID_ARGUMENT, "partition"});
  cases.push_back({"missing topic", Request("missing", 6), grpc::StatusCode::NOT_FOUND, "missing"});
  for (const Case& c : cases) {
    ProduceResponse response;
    grpc::Status status = ProduceOne(c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }
  ProduceResponse response;
  EXPECT_TRUE(ProduceOne(Request("good", 7), &response).ok());
}

// Bytes that are not a message of the method's request type (a client with another proto, or
// a broken one): INVALID_ARGUMENT naming the type, after the answers to what came before.
TEST_F(ProduceIntegrationTest, RequestBytesThatDoNotParseAreInvalidArgument) {
  StartSidecar();
  CreateTopic("parsed");
  const std::string garbage = "\x0a\x40only-two-bytes-of-sixty-four";  // field 1, cut short
  const std::string target = harness_->target();
  const std::string service = "/kafka_sidecar.v1.KafkaSidecar/";
  RawCallResult unary = RawUnaryCall(target, service + "Produce", garbage, absl::Seconds(30));
  EXPECT_EQ(unary.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unary.status.error_message(), HasSubstr("kafka_sidecar.v1.ProduceRequest"));

  RawCallResult stream = RawStreamCall(
      target, service + "ProduceStream", {Request("parsed", 1).SerializeAsString(), garbage},
      absl::Seconds(30));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << stream.status.error_message();
  EXPECT_THAT(stream.status.error_message(), HasSubstr("kafka_sidecar.v1.ProduceRequest"));
  EXPECT_EQ(stream.responses, 1);  // the record before the garbage was answered

  ProduceBatch batch;
  *batch.add_records() = Request("parsed", 2);
  RawCallResult batches = RawStreamCall(target, service + "ProduceBatchStream",
                                        {batch.SerializeAsString(), garbage}, absl::Seconds(30));
  EXPECT_EQ(batches.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << batches.status.error_message();
  EXPECT_THAT(batches.status.error_message(), HasSubstr("kafka_sidecar.v1.ProduceBatch"));
  EXPECT_EQ(batches.responses, 1);
  // Both records are in Kafka.
  absl::StatusOr<std::vector<ConsumedRecord>> records =
      ReadTopic(harness_->bootstrap(), "parsed", 2, kReadTimeout);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(records->size(), 2u);
}

TEST_F(ProduceIntegrationTest, BadStreamRecordsGetErrorsAndTheStreamGoesOn) {
  StartSidecar();
  CreateTopic("good");
  harness_->cluster().SetTopicError("missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  std::vector<ProduceRequest> requests;
  std::map<uint64_t, grpc::StatusCode> expected;  // OK for good records
  uint64_t id = 1;
  auto add = [&](ProduceRequest request, grpc::StatusCode code) {
    request.set_request_id(id);
    expected[id++] = code;
    requests.push_back(std::move(request));
  };
  for (int round = 0; round < 3; ++round) {
    add(Request("good", 0), grpc::StatusCode::OK);
    add(Request("", 0), grpc::StatusCode::INVALID_ARGUMENT);
    ProduceRequest big = Request("good", 0);
    big.set_value(std::string(20000, 'x'));
    add(big, grpc::StatusCode::INVALID_ARGUMENT);
    ProduceRequest no_partition = Request("good", 0);
    no_partition.set_partition(99);
    add(no_partition, grpc::StatusCode::NOT_FOUND);
    add(Request("missing", 0), grpc::StatusCode::NOT_FOUND);
    add(Request("good", 0), grpc::StatusCode::OK);
  }
  ProduceStreamResult result = RunProduceStream(harness_->stub(), requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), requests.size());
  std::map<uint64_t, grpc::StatusCode> got;
  for (const ProduceResponse& response : result.responses) {
    got[response.request_id()] = response.has_error()
                                     ? static_cast<grpc::StatusCode>(response.error().code())
                                     : grpc::StatusCode::OK;
    if (response.has_error()) {
      EXPECT_FALSE(response.error().message().empty());
    }
  }
  EXPECT_EQ(got, expected);
}

TEST_F(ProduceIntegrationTest, RecordsWaitWhileBrokersAreDownAndArriveWhenTheyReturn) {
  StartSidecar();
  CreateTopic("outage");
  WarmUp("outage");
  harness_->SetAllBrokersDown();
  constexpr int kRecords = 100;
  std::vector<ProduceRequest> requests;
  for (int i = 1; i <= kRecords; ++i) requests.push_back(Request("outage", i));
  ProduceStreamResult result;
  std::thread client([&] { result = RunProduceStream(harness_->stub(), requests); });
  // Every record reached the producer and none could be answered.
  EXPECT_TRUE(harness_->producer().WaitForWaiting(kRecords, absl::Seconds(30)));
  harness_->SetAllBrokersUp();
  client.join();
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), static_cast<size_t>(kRecords));
  for (const ProduceResponse& response : result.responses) {
    EXPECT_FALSE(response.has_error()) << response.error().message();
  }
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(harness_->bootstrap(), "outage", kRecords + 1, kReadTimeout);
  ASSERT_TRUE(read.ok()) << read.status();
}

TEST_F(ProduceIntegrationTest, RecordsFailWithUnavailableAfterTheMessageTimeout) {
  SidecarHarness::Options options;
  options.kafka_settings = {{"message.timeout.ms", "1500"}};
  StartSidecar(options);
  CreateTopic("outage");
  WarmUp("outage");
  harness_->SetAllBrokersDown();

  ProduceResponse response;
  grpc::Status unary = ProduceOne(Request("outage", 1), &response);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::UNAVAILABLE) << unary.error_message();
  EXPECT_THAT(unary.error_message(), HasSubstr("message.timeout.ms"));

  std::vector<ProduceRequest> requests;
  for (int i = 1; i <= 20; ++i) requests.push_back(Request("outage", i));
  ProduceStreamResult result = RunProduceStream(harness_->stub(), requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), requests.size());
  for (const ProduceResponse& response : result.responses) {
    EXPECT_EQ(response.error().code(), grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_F(ProduceIntegrationTest, StreamNeverHoldsMoreThanMaxPendingProduces) {
  constexpr int kMaxPending = 50;
  constexpr int kRecords = 600;
  SidecarHarness::Options options;
  options.max_pending_produces = kMaxPending;
  StartSidecar(options);
  CreateTopic("bounded");
  WarmUp("bounded");
  harness_->SetAllBrokersDown();
  std::vector<ProduceRequest> requests;
  for (int i = 1; i <= kRecords; ++i) requests.push_back(Request("bounded", i));
  ProduceStreamResult result;
  std::thread client([&] { result = RunProduceStream(harness_->stub(), requests); });
  ASSERT_TRUE(harness_->producer().WaitForWaiting(kMaxPending, absl::Seconds(30)));
  // The sidecar reads no further while Kafka is away: produced() stops at the bound.
  EXPECT_EQ(harness_->producer().produced(), 1 + kMaxPending);
  harness_->SetAllBrokersUp();
  client.join();
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.responses.size(), static_cast<size_t>(kRecords));
  EXPECT_EQ(harness_->producer().max_waiting(), kMaxPending);
}

TEST_F(ProduceIntegrationTest, ProduceBatchStreamResultsMatchWhatAConsumerReadsBack) {
  StartSidecar();
  CreateTopic("batches");
  // Batches of 0 to 60 records, keyed, unkeyed, empty-keyed and pinned to partitions.
  std::vector<ProduceBatch> batches;
  std::vector<ProduceRequest> requests;  // by request_id - 1
  for (int b = 0; b < 40; ++b) {
    ProduceBatch& batch = batches.emplace_back();
    batch.set_batch_id(1000 + b);
    for (int j = 0; j < (b * 7) % 61; ++j) {
      const int id = static_cast<int>(requests.size()) + 1;
      ProduceRequest request = Request("batches", id);
      if (id % 10 == 0) request.clear_key();
      if (id % 10 == 1) request.set_key("");
      if (id % 7 == 0) request.set_partition(id % kPartitions);
      auto* header = request.add_headers();
      header->set_key("id");
      header->set_value(absl::StrCat(id));
      requests.push_back(request);
      *batch.add_records() = request;
    }
  }
  ASSERT_GT(requests.size(), 1000u);
  BatchStreamResult result = RunProduceBatchStream(harness_->stub(), batches);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.results.size(), batches.size());

  // One result per batch, one response per record in the batch's order.
  absl::flat_hash_map<uint64_t, ProduceResponse> by_id;
  absl::flat_hash_map<uint64_t, const ProduceBatchResult*> by_batch;
  for (const ProduceBatchResult& batch_result : result.results) {
    ASSERT_TRUE(by_batch.emplace(batch_result.batch_id(), &batch_result).second)
        << "two results for batch " << batch_result.batch_id();
  }
  for (const ProduceBatch& batch : batches) {
    auto it = by_batch.find(batch.batch_id());
    ASSERT_NE(it, by_batch.end()) << "no result for batch " << batch.batch_id();
    const ProduceBatchResult& batch_result = *it->second;
    ASSERT_EQ(batch_result.results_size(), batch.records_size()) << batch.batch_id();
    for (int j = 0; j < batch.records_size(); ++j) {
      const ProduceResponse& response = batch_result.results(j);
      EXPECT_EQ(response.request_id(), batch.records(j).request_id());
      EXPECT_EQ(response.topic(), "batches");
      EXPECT_FALSE(response.has_error()) << response.error().message();
      by_id.emplace(response.request_id(), response);
    }
  }

  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(harness_->bootstrap(), "batches", requests.size(), kReadTimeout);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), requests.size());
  for (const ConsumedRecord& record : *read) {
    ASSERT_EQ(record.headers.size(), 1u);
    const uint64_t id = std::stoull(record.headers[0].second);
    const ProduceRequest& request = requests[id - 1];
    auto it = by_id.find(id);
    ASSERT_NE(it, by_id.end()) << "record " << id << " in Kafka without an answer";
    EXPECT_EQ(it->second.partition(), record.partition) << id;
    EXPECT_EQ(it->second.offset(), record.offset) << id;
    EXPECT_EQ(record.value, request.value());
    EXPECT_EQ(record.key.has_value(), request.has_key()) << id;
    if (request.has_key()) {
      EXPECT_EQ(*record.key, request.key()) << id;
    }
    if (request.has_partition()) {
      EXPECT_EQ(record.partition, request.partition()) << id;
    }
  }
  EXPECT_EQ(harness_->server().produce_metrics().batches.load(),
            static_cast<int64_t>(batches.size()) - 1);  // the empty batch never reaches Kafka
}

TEST_F(ProduceIntegrationTest, ABadRecordInABatchFailsAloneAndTheStreamGoesOn) {
  StartSidecar();
  CreateTopic("good");
  harness_->cluster().SetTopicError("missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  std::vector<ProduceBatch> batches(3);
  std::vector<std::vector<grpc::StatusCode>> expected(3);
  uint64_t id = 1;
  auto add = [&](int b, ProduceRequest request, grpc::StatusCode code) {
    request.set_request_id(id++);
    *batches[b].add_records() = std::move(request);
    expected[b].push_back(code);
  };
  add(0, Request("good", 0), grpc::StatusCode::OK);
  add(0, Request("", 0), grpc::StatusCode::INVALID_ARGUMENT);
  add(0, Request("a b", 0), grpc::StatusCode::INVALID_ARGUMENT);
  ProduceRequest negative = Request("good", 0);
  negative.set_partition(-1);
  add(0, negative, grpc::StatusCode::INVALID_ARGUMENT);
  ProduceRequest big = Request("good", 0);
  big.set_value(std::string(20000, 'x'));
  add(0, big, grpc::StatusCode::INVALID_ARGUMENT);
  ProduceRequest no_partition = Request("good", 0);
  no_partition.set_partition(99);
  add(0, no_partition, grpc::StatusCode::NOT_FOUND);
  add(0, Request("missing", 0), grpc::StatusCode::NOT_FOUND);
  add(0, Request("good", 0), grpc::StatusCode::OK);
  // An empty batch gets an empty result; the next batch is whole again.
  for (int i = 0; i < 5; ++i) add(2, Request("good", 0), grpc::StatusCode::OK);
  for (int b = 0; b < 3; ++b) batches[b].set_batch_id(b + 1);

  BatchStreamResult result = RunProduceBatchStream(harness_->stub(), batches);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.results.size(), batches.size());
  for (const ProduceBatchResult& batch_result : result.results) {
    const int b = static_cast<int>(batch_result.batch_id()) - 1;
    ASSERT_GE(b, 0);
    ASSERT_LT(b, 3);
    std::vector<grpc::StatusCode> got;
    for (int j = 0; j < batch_result.results_size(); ++j) {
      const ProduceResponse& response = batch_result.results(j);
      got.push_back(CodeOf(response));
      EXPECT_EQ(response.request_id(), batches[b].records(j).request_id());
      EXPECT_EQ(response.topic(), batches[b].records(j).topic());
      if (response.has_error()) {
        EXPECT_FALSE(response.error().message().empty());
      } else {
        EXPECT_GE(response.offset(), 0);
      }
    }
    EXPECT_EQ(got, expected[b]) << "batch " << b + 1;
  }
  // The refusals name what was wrong.
  for (const ProduceBatchResult& batch_result : result.results) {
    if (batch_result.batch_id() != 1) continue;
    EXPECT_THAT(batch_result.results(1).error().message(), HasSubstr("topic"));
    EXPECT_THAT(batch_result.results(3).error().message(), HasSubstr("partition"));
    EXPECT_THAT(batch_result.results(4).error().message(), HasSubstr("message.max.bytes"));
  }
}

TEST_F(ProduceIntegrationTest, ProduceBatchStreamStopsReadingWhileTheClientReadsNoResults) {
  constexpr int kMaxPending = 100;
  constexpr int kBatch = 10;
  constexpr int kBatches = 1000;
  SidecarHarness::Options options;
  options.max_pending_produces = kMaxPending;
  StartSidecar(options);
  // Long topic names make results large, so they soon fill the client's flow-control window.
  const std::string topic(200, 't');
  CreateTopic(topic);
  std::vector<ProduceBatch> batches(kBatches);
  for (int b = 0; b < kBatches; ++b) {
    batches[b].set_batch_id(b);
    for (int j = 0; j < kBatch; ++j) *batches[b].add_records() = Request(topic, b * kBatch + j);
  }

  // A client that writes every batch but reads no result until told to. Without BDP probing
  // its receive window stays at gRPC's fixed lookahead.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(
      grpc::CreateCustomChannel(harness_->target(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ProduceBatchStream(&context);
  std::thread writer([&] {
    for (const ProduceBatch& batch : batches) {
      if (!stream->Write(batch)) return;
    }
    stream->WritesDone();
  });

  // Kafka answers everything it gets; the results back up, and once kMaxPending records are
  // unanswered the sidecar reads no further: never more than the bound plus one batch.
  const int64_t pending =
      ScrapeUntilAtLeast("kafka_sidecar_produce_pending_records", kMaxPending, absl::Seconds(30));
  EXPECT_GE(pending, kMaxPending);
  EXPECT_LE(pending, kMaxPending - 1 + kBatch);
  EXPECT_TRUE(harness_->producer().WaitForWaiting(0, absl::Seconds(30)));
  EXPECT_LT(harness_->producer().produced(), kBatches * kBatch / 2)
      << "the sidecar kept reading a stream whose client reads no results";

  // The client reads again: every batch is answered.
  std::vector<bool> answered(kBatches, false);
  ProduceBatchResult batch_result;
  int results = 0;
  while (stream->Read(&batch_result)) {
    ++results;
    ASSERT_LT(batch_result.batch_id(), static_cast<uint64_t>(kBatches));
    EXPECT_FALSE(answered[batch_result.batch_id()]) << batch_result.batch_id();
    answered[batch_result.batch_id()] = true;
    ASSERT_EQ(batch_result.results_size(), kBatch);
    for (const ProduceResponse& response : batch_result.results()) {
      EXPECT_FALSE(response.has_error()) << response.error().message();
    }
  }
  writer.join();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(results, kBatches);
  EXPECT_LE(harness_->producer().max_waiting(), kMaxPending - 1 + kBatch);
  EXPECT_EQ(harness_->server().produce_metrics().pending_records.load(), 0);
}

TEST_F(ProduceIntegrationTest, ProduceBatchStreamHoldsWholeBatchesUpToMaxPendingForKafka) {
  constexpr int kMaxPending = 50;
  constexpr int kBatch = 7;
  SidecarHarness::Options options;
  options.max_pending_produces = kMaxPending;
  StartSidecar(options);
  CreateTopic("bounded");
  WarmUp("bounded");
  int id = 0;
  auto make_batch = [&](int records) {
    ProduceBatch batch;
    batch.set_batch_id(id);
    for (int j = 0; j < records; ++j) *batch.add_records() = Request("bounded", id++);
    return batch;
  };
  auto expect_all_produced = [](const BatchStreamResult& result,
                                const std::vector<ProduceBatch>& batches) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    ASSERT_EQ(result.results.size(), batches.size());
    for (const ProduceBatchResult& batch_result : result.results) {
      int records = -1;
      for (const ProduceBatch& batch : batches) {
        if (batch.batch_id() == batch_result.batch_id()) records = batch.records_size();
      }
      EXPECT_EQ(batch_result.results_size(), records) << batch_result.batch_id();
      for (const ProduceResponse& response : batch_result.results()) {
        EXPECT_FALSE(response.has_error()) << response.error().message();
      }
    }
  };

  // Kafka is away: whole batches are read while fewer than kMaxPending records wait, so the
  // 8th batch of 7 is the last one read (56 records), and none is split.
  harness_->SetAllBrokersDown();
  std::vector<ProduceBatch> batches;
  for (int b = 0; b < 40; ++b) batches.push_back(make_batch(kBatch));
  BatchStreamResult result;
  std::thread client([&] { result = RunProduceBatchStream(harness_->stub(), batches); });
  constexpr int kHeld = (kMaxPending + kBatch - 1) / kBatch * kBatch;
  ASSERT_TRUE(harness_->producer().WaitForWaiting(kHeld, absl::Seconds(30)));
  EXPECT_EQ(harness_->producer().produced(), 1 + kHeld);
  harness_->SetAllBrokersUp();
  client.join();
  expect_all_produced(result, batches);
  EXPECT_EQ(harness_->producer().max_waiting(), kHeld);

  // A batch larger than the bound is still taken when nothing else is pending, and alone.
  const int produced = harness_->producer().produced();
  harness_->SetAllBrokersDown();
  batches = {make_batch(3 * kMaxPending), make_batch(kBatch), make_batch(kBatch)};
  client = std::thread([&] { result = RunProduceBatchStream(harness_->stub(), batches); });
  ASSERT_TRUE(harness_->producer().WaitForWaiting(3 * kMaxPending, absl::Seconds(30)));
  EXPECT_EQ(harness_->producer().produced(), produced + 3 * kMaxPending);
  harness_->SetAllBrokersUp();
  client.join();
  expect_all_produced(result, batches);
  EXPECT_EQ(harness_->producer().max_waiting(), 3 * kMaxPending);
}

TEST_F(ProduceIntegrationTest, AFullWindowGoesToKafkaWithoutWaitingForLinger) {
  // librdkafka holds a record up to linger.ms for more to fill a request. A stream whose window
  // is full reads no more until it has answers, so the sidecar has it sent at once.
  constexpr int kWindow = 50;
  constexpr absl::Duration kLinger = absl::Seconds(20);
  SidecarHarness::Options options;
  options.max_pending_produces = kWindow;
  options.kafka_settings = {{"linger.ms", absl::StrCat(absl::ToInt64Milliseconds(kLinger))}};
  StartSidecar(options);
  CreateTopic("eager");
  std::vector<ProduceRequest> window;
  for (int i = 0; i < kWindow; ++i) window.push_back(Request("eager", i));
  auto expect_answered = [](const ProduceStreamResult& result) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    ASSERT_EQ(result.responses.size(), static_cast<size_t>(kWindow));
    for (const ProduceResponse& response : result.responses) {
      EXPECT_FALSE(response.has_error()) << response.error().message();
    }
  };
  // The first window may also wait for the topic's metadata, which can come after the
  // producer was asked to send: it is not timed.
  expect_answered(RunProduceStream(harness_->stub(), window));

  const absl::Time start = absl::Now();
  for (int round = 0; round < 3; ++round) {
    // The stream reads its 50th record with none answered: its window is full.
    expect_answered(RunProduceStream(harness_->stub(), window));
  }
  std::vector<ProduceBatch> batches(3);
  for (int b = 0; b < 3; ++b) {
    batches[b].set_batch_id(b);
    // Each batch fills the window alone.
    for (const ProduceRequest& request : window) *batches[b].add_records() = request;
  }
  const BatchStreamResult result = RunProduceBatchStream(harness_->stub(), batches);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.results.size(), batches.size());
  // Six windows that each waited for linger.ms would take two minutes.
  EXPECT_LT(absl::Now() - start, kLinger);
}

// Records over message.max.bytes (librdkafka's default) but far below the sidecar's gRPC limit.
class LargeRecordTest : public ProduceIntegrationTest {
 protected:
  void SetUp() override {
    SidecarHarness::Options options;
    options.kafka_settings = {{"message.max.bytes", "1000000"}};
    StartSidecar(options);
    CreateTopic("large");
  }

  static ProduceRequest Large(uint64_t id) {
    ProduceRequest request = Request("large", id);
    request.set_value(std::string(5 * kMiB, 'x'));
    return request;
  }
};

TEST_F(LargeRecordTest, UnaryProduceOfA5MiBRecordIsInvalidArgument) {
  ProduceResponse response;
  grpc::Status status = ProduceOne(Large(1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("message.max.bytes"));
  status = ProduceOne(Request("large", 2), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  // A message larger than the server's limit (16 MiB here) never reaches the sidecar.
  ProduceRequest huge = Request("large", 3);
  huge.set_value(std::string(17 * kMiB, 'x'));
  status = ProduceOne(huge, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST_F(LargeRecordTest, A5MiBRecordFailsAloneInProduceStream) {
  std::vector<ProduceRequest> requests = {Request("large", 1), Large(2), Request("large", 3),
                                          Large(4), Request("large", 5)};
  ProduceStreamResult result = RunProduceStream(harness_->stub(), requests);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), requests.size());
  std::map<uint64_t, grpc::StatusCode> got;
  for (const ProduceResponse& response : result.responses) {
    got[response.request_id()] = CodeOf(response);
    if (response.has_error()) {
      EXPECT_THAT(response.error().message(), HasSubstr("message.max.bytes"));
    }
  }
  const std::map<uint64_t, grpc::StatusCode> expected = {
      {1, grpc::StatusCode::OK}, {2, grpc::StatusCode::INVALID_ARGUMENT},
      {3, grpc::StatusCode::OK}, {4, grpc::StatusCode::INVALID_ARGUMENT},
      {5, grpc::StatusCode::OK}};
  EXPECT_EQ(got, expected);
}

TEST_F(LargeRecordTest, A5MiBRecordFailsAloneInProduceBatchStream) {
  std::vector<ProduceBatch> batches(3);
  batches[0].set_batch_id(1);
  *batches[0].add_records() = Request("large", 1);
  *batches[0].add_records() = Large(2);
  *batches[0].add_records() = Request("large", 3);
  batches[1].set_batch_id(2);
  *batches[1].add_records() = Large(4);
  batches[2].set_batch_id(3);
  *batches[2].add_records() = Request("large", 5);
  BatchStreamResult result = RunProduceBatchStream(harness_->stub(), batches);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.results.size(), batches.size());
  std::map<uint64_t, std::vector<grpc::StatusCode>> got;
  for (const ProduceBatchResult& batch_result : result.results) {
    for (const ProduceResponse& response : batch_result.results()) {
      got[batch_result.batch_id()].push_back(CodeOf(response));
    }
  }
  const std::map<uint64_t, std::vector<grpc::StatusCode>> expected = {
      {1, {grpc::StatusCode::OK, grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::OK}},
      {2, {grpc::StatusCode::INVALID_ARGUMENT}},
      {3, {grpc::StatusCode::OK}}};
  EXPECT_EQ(got, expected);
}

TEST_F(ProduceIntegrationTest, BatchStreamAnswersAcceptedBatchesAndEndsUnavailableOnShutdown) {
  SidecarHarness::Options options;
  options.shutdown_grace = absl::Milliseconds(500);
  StartSidecar(options);
  CreateTopic("draining");
  WarmUp("draining");
  harness_->SetAllBrokersDown();

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = harness_->stub().ProduceBatchStream(&context);
  ProduceBatch batch;
  batch.set_batch_id(7);
  for (int j = 0; j < 5; ++j) *batch.add_records() = Request("draining", j);
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(harness_->producer().WaitForWaiting(5, absl::Seconds(30)));

  // Kafka is away for the whole grace: the accepted records fail with UNAVAILABLE, the result
  // still comes, and the stream ends with UNAVAILABLE.
  std::thread shutdown([&] { harness_->server().Shutdown(); });
  std::vector<ProduceBatchResult> results;
  ProduceBatchResult batch_result;
  while (stream->Read(&batch_result)) results.push_back(batch_result);
  grpc::Status status = stream->Finish();
  shutdown.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].batch_id(), 7u);
  ASSERT_EQ(results[0].results_size(), 5);
  for (const ProduceResponse& response : results[0].results()) {
    EXPECT_EQ(CodeOf(response), grpc::StatusCode::UNAVAILABLE) << response.error().message();
  }
  harness_->SetAllBrokersUp();
}

}  // namespace
}  // namespace kafka_sidecar::testing
