// The sidecar binary against Apache Kafka itself (one KRaft node, topics never created
// automatically): produce by all three methods and consume end to end, checked by a plain
// librdkafka client; a missing topic answered NOT_FOUND, naming it, on both paths.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "testing/consume_client.h"
#include "testing/kafka/shared_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/produce_stream_client.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;

const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);
std::string Bootstrap() { return SharedKafka::Get().bootstrap(); }

std::unique_ptr<SidecarProcess> StartSidecar(const std::string& name) {
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
      Bootstrap(), {"--kafka_config=fetch.wait.max.ms=10"}, name);
  EXPECT_TRUE(sidecar.ok()) << sidecar.status();
  return sidecar.ok() ? *std::move(sidecar) : nullptr;
}

ProduceRequest Request(const std::string& topic, const std::string& how, int i) {
  ProduceRequest request;
  request.set_topic(topic);
  request.set_key(absl::StrCat("key-", i % 10));
  request.set_value(absl::StrCat(how, "-", i));
  request.set_request_id(i);
  auto* header = request.add_headers();
  header->set_key("via");
  header->set_value(how);
  return request;
}

TEST(RealKafkaEndToEndTest, AllThreeProduceMethodsAndConsumeMatchWhatAPlainClientReads) {
  constexpr int kEach = 100;
  ASSERT_TRUE(CreateTopic(Bootstrap(), "orders", kPartitions, 1).ok());
  auto sidecar = StartSidecar("e2e");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();

  // What the sidecar said it wrote: value -> (partition, offset).
  std::map<std::string, std::pair<int32_t, int64_t>> written;
  auto note = [&](const ProduceRequest& request, const ProduceResponse& response) {
    ASSERT_FALSE(response.has_error()) << response.error().message();
    EXPECT_EQ(response.topic(), "orders");
    EXPECT_EQ(response.request_id(), request.request_id());
    EXPECT_GE(response.offset(), 0);
    written[request.value()] = {response.partition(), response.offset()};
  };

  for (int i = 0; i < kEach; ++i) {
    const ProduceRequest request = Request("orders", "unary", i);
    ProduceResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ASSERT_TRUE(stub->Produce(&context, request, &response).ok());
    note(request, response);
  }

  std::vector<ProduceRequest> requests;
  for (int i = 0; i < kEach; ++i) requests.push_back(Request("orders", "stream", i));
  ProduceStreamResult stream = RunProduceStream(*stub, requests);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_EQ(stream.responses.size(), requests.size());
  for (const ProduceResponse& response : stream.responses) {
    note(requests.at(response.request_id()), response);
  }

  std::vector<ProduceBatch> batches(4);
  std::vector<ProduceRequest> batched;
  for (int i = 0; i < kEach; ++i) {
    batched.push_back(Request("orders", "batch", i));
    *batches[i % 4].add_records() = batched.back();
  }
  for (size_t b = 0; b < batches.size(); ++b) batches[b].set_batch_id(b);
  BatchStreamResult batch = RunProduceBatchStream(*stub, batches);
  ASSERT_TRUE(batch.status.ok()) << batch.status.error_message();
  ASSERT_EQ(batch.results.size(), batches.size());
  for (const auto& result : batch.results) {
    const ProduceBatch& sent = batches.at(result.batch_id());
    ASSERT_EQ(result.results_size(), sent.records_size());
    for (int i = 0; i < sent.records_size(); ++i) note(sent.records(i), result.results(i));
  }
  ASSERT_EQ(written.size(), 3u * kEach);

  // A plain consumer reads exactly that, where the sidecar said.
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(Bootstrap(), "orders", written.size(), absl::Seconds(30));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), written.size());
  for (const ConsumedRecord& r : *read) {
    ASSERT_EQ(written.count(r.value), 1u) << r.value;
    EXPECT_EQ(written[r.value], std::make_pair(r.partition, r.offset)) << r.value;
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "via");
    EXPECT_EQ(r.value.rfind(r.headers[0].second + "-", 0), 0u) << r.value;
  }

  // Consumed back through the sidecar: every record once, keys in order, offsets committed.
  ConsumeClient consumer(*stub, absl::Seconds(60));
  ASSERT_TRUE(consumer.Subscribe("e2e-readers", {"orders"}, 100));
  std::vector<Record> got = consumer.Receive(written.size(), /*ack=*/true);
  ASSERT_EQ(got.size(), written.size());
  std::set<std::string> values;
  std::map<std::string, int64_t> last_offset;  // per key
  for (const Record& r : got) {
    EXPECT_TRUE(values.insert(r.value()).second) << r.value() << " twice";
    EXPECT_EQ(written[r.value()], std::make_pair(r.partition(), r.offset()));
    EXPECT_EQ(r.delivery_attempt(), 1u);
    auto [it, first] = last_offset.try_emplace(r.key(), r.offset());
    if (!first) {
      EXPECT_GT(r.offset(), it->second) << "key " << r.key() << " out of order";
      it->second = r.offset();
    }
  }
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(Bootstrap(), "orders", kPartitions);
  ASSERT_TRUE(ends.ok()) << ends.status();
  std::vector<int64_t> committed;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto read = CommittedOffsets(Bootstrap(), "e2e-readers", "orders", kPartitions);
        if (read.ok()) committed = *read;
        return committed == *ends;
      },
      absl::Seconds(30), absl::Milliseconds(100)))
      << "committed " << ::testing::PrintToString(committed) << ", ends "
      << ::testing::PrintToString(*ends);
  consumer.Cancel();
}

TEST(RealKafkaEndToEndTest, AMissingTopicIsNotFoundNamingItOnEveryPath) {
  auto sidecar = StartSidecar("missing");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();

  ProduceResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  grpc::Status unary = stub->Produce(&context, Request("no-such-topic", "unary", 0), &response);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::NOT_FOUND) << unary.error_message();
  EXPECT_THAT(unary.error_message(), HasSubstr("no-such-topic"));

  ProduceStreamResult stream = RunProduceStream(*stub, {Request("no-such-topic", "stream", 1)}, 90);
  EXPECT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_EQ(stream.responses.size(), 1u);
  EXPECT_EQ(stream.responses[0].error().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(stream.responses[0].error().message(), HasSubstr("no-such-topic"));

  ConsumeClient consumer(*stub, absl::Seconds(90));
  ASSERT_TRUE(consumer.Subscribe("lost", {"no-such-topic"}));
  grpc::Status end = consumer.AwaitEnd();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND) << end.error_message();
  EXPECT_THAT(end.error_message(), HasSubstr("no-such-topic"));
}

}  // namespace
}  // namespace kafka_sidecar::testing
