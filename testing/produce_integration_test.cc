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
#include "absl/strings/str_cat.h"
#include "testing/kafka_test_client.h"
#include "testing/produce_stream_client.h"
#include "testing/sidecar_harness.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using ::testing::HasSubstr;

constexpr int kPartitions = 6;
constexpr absl::Duration kReadTimeout = absl::Seconds(30);

class ProduceIntegrationTest : public ::testing::Test {
 protected:
  void StartSidecar(SidecarHarness::Options options = {}) {
    options.kafka_settings.emplace_back("topic.metadata.propagation.max.ms", "1000");
    options.kafka_settings.emplace_back("message.max.bytes", "10000");
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

}  // namespace
}  // namespace kafka_sidecar::testing
