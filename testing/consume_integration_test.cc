// Consume end to end: records produced by a plain librdkafka producer, read through the real
// sidecar (gRPC server, subscriptions, librdkafka consumer) by a real gRPC client, against the
// embedded Kafka cluster. Committed offsets are read back by a plain client.

#include <glog/logging.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/raw_call.h"
#include "testing/sidecar_harness.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

constexpr int kPartitions = 6;
constexpr absl::Duration kStreamDeadline = absl::Seconds(90);
constexpr int kOffsetCommitApi = 8;

class ConsumeIntegrationTest : public ::testing::Test {
 protected:
  void StartSidecar(SidecarHarness::Options options = {}) {
    options.config.commit_interval = absl::Milliseconds(200);
    absl::StatusOr<std::unique_ptr<SidecarHarness>> harness =
        SidecarHarness::Start(std::move(options));
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = *std::move(harness);
  }

  void CreateAndFill(const std::string& topic, int64_t records, int partitions = kPartitions) {
    ASSERT_TRUE(harness_->cluster().CreateTopic(topic, partitions).ok());
    if (records > 0) {
      ASSERT_TRUE(ProduceDirect(harness_->bootstrap(), topic, records, 20).ok());
    }
  }

  // Waits until the group's committed offsets equal `expected`, or a deadline passes; returns
  // the last offsets read.
  std::vector<int64_t> AwaitCommitted(const std::string& group, const std::string& topic,
                                      const std::vector<int64_t>& expected) {
    std::vector<int64_t> committed;
    WaitUntil(
        [&] {
          absl::StatusOr<std::vector<int64_t>> read = CommittedOffsets(
              harness_->bootstrap(), group, topic, static_cast<int>(expected.size()));
          if (read.ok()) committed = *read;
          return committed == expected;
        },
        absl::Seconds(30), absl::Milliseconds(50));
    return committed;
  }

  std::vector<int64_t> Ends(const std::string& topic, int partitions = kPartitions) {
    absl::StatusOr<std::vector<int64_t>> ends =
        EndOffsets(harness_->bootstrap(), topic, partitions);
    EXPECT_TRUE(ends.ok()) << ends.status();
    return ends.ok() ? *ends : std::vector<int64_t>();
  }

  std::unique_ptr<ConsumeClient> Open() {
    return std::make_unique<ConsumeClient>(harness_->stub(), kStreamDeadline);
  }

  std::unique_ptr<SidecarHarness> harness_;
};

TEST_F(ConsumeIntegrationTest, DeliversEveryRecordAndCommitsTheLogEnd) {
  StartSidecar();
  constexpr int kRecords = 10000;
  CreateAndFill("orders", kRecords);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("billing", {"orders"}));
  EXPECT_FALSE(client->stream_id().empty());
  std::vector<Record> records = client->Receive(kRecords, /*ack=*/true);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));

  std::set<std::pair<int32_t, int64_t>> seen;
  absl::flat_hash_set<uint64_t> ids;
  for (const Record& r : records) {
    EXPECT_TRUE(seen.emplace(r.partition(), r.offset()).second)
        << "twice: " << r.partition() << "@" << r.offset();
    EXPECT_TRUE(ids.insert(r.delivery_id()).second);
    EXPECT_EQ(r.topic(), "orders");
    EXPECT_EQ(r.delivery_attempt(), 1u);
    EXPECT_EQ(r.value().size(), 20u);
    EXPECT_TRUE(r.has_key());
    EXPECT_GT(r.timestamp_ms(), 0);
  }
  const std::vector<int64_t> ends = Ends("orders");
  EXPECT_EQ(AwaitCommitted("billing", "orders", ends), ends);
  EXPECT_EQ(harness_->consume_metrics().records_acked.load(), kRecords);
  EXPECT_TRUE(client->Finish().ok());
}

TEST_F(ConsumeIntegrationTest, RandomAckOrderNeverCommitsPastAnUnackedRecord) {
  StartSidecar();
  constexpr int kRecords = 3000;
  CreateAndFill("shuffled", kRecords);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("auditors", {"shuffled"}, /*max_in_flight=*/400));
  std::mt19937 rng(7);
  std::map<uint64_t, std::pair<int32_t, int64_t>> unacked;  // delivery id -> partition, offset
  std::vector<int64_t> next_unseen(kPartitions, 0);
  int received = 0;
  int checks = 0;
  while (received < kRecords || !unacked.empty()) {
    if (received < kRecords) {
      std::optional<kafka_sidecar::v1::RecordBatch> batch = client->Next();
      ASSERT_TRUE(batch.has_value());
      for (const Record& r : batch->records()) {
        unacked[r.delivery_id()] = {r.partition(), r.offset()};
        next_unseen[r.partition()] = std::max(next_unseen[r.partition()], r.offset() + 1);
        ++received;
      }
    }
    // Ack a random half of what is outstanding (all of it once everything arrived).
    std::vector<uint64_t> ids;
    for (const auto& [id, where] : unacked) {
      if (received == kRecords || rng() % 2 == 0) ids.push_back(id);
    }
    std::shuffle(ids.begin(), ids.end(), rng);
    for (uint64_t id : ids) unacked.erase(id);
    ASSERT_TRUE(client->Ack(ids));

    if (++checks % 3 != 0 && received < kRecords) continue;
    // Whatever Kafka holds as committed must not pass the lowest record still unacked (or not
    // yet received) in its partition.
    absl::StatusOr<std::vector<int64_t>> committed =
        CommittedOffsets(harness_->bootstrap(), "auditors", "shuffled", kPartitions);
    ASSERT_TRUE(committed.ok()) << committed.status();
    std::vector<int64_t> lowest_unacked = next_unseen;
    for (const auto& [id, where] : unacked) {
      lowest_unacked[where.first] = std::min(lowest_unacked[where.first], where.second);
    }
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_LE((*committed)[p], lowest_unacked[p]) << "partition " << p;
    }
  }
  const std::vector<int64_t> ends = Ends("shuffled");
  EXPECT_EQ(AwaitCommitted("auditors", "shuffled", ends), ends);
}

TEST_F(ConsumeIntegrationTest, UnackedRecordsOfAClosedStreamGoToTheNextStream) {
  StartSidecar();
  constexpr int kRecords = 200;
  CreateAndFill("handoff", kRecords);
  auto first = Open();
  ASSERT_TRUE(first->Subscribe("workers", {"handoff"}));
  std::vector<Record> records = first->Receive(kRecords, /*ack=*/false);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  std::set<std::pair<int32_t, int64_t>> unacked;
  std::vector<uint64_t> acked_ids;
  for (size_t i = 0; i < records.size(); ++i) {
    if (i % 3 == 0) {
      acked_ids.push_back(records[i].delivery_id());
    } else {
      unacked.emplace(records[i].partition(), records[i].offset());
    }
  }
  ASSERT_TRUE(first->Ack(acked_ids));
  EXPECT_TRUE(first->Finish().ok());

  auto second = Open();
  ASSERT_TRUE(second->Subscribe("workers", {"handoff"}));
  std::vector<Record> again = second->Receive(unacked.size(), /*ack=*/true);
  std::set<std::pair<int32_t, int64_t>> redelivered;
  for (const Record& r : again) {
    redelivered.emplace(r.partition(), r.offset());
    EXPECT_EQ(r.delivery_attempt(), 2u);
  }
  EXPECT_EQ(redelivered, unacked);
  const std::vector<int64_t> ends = Ends("handoff");
  EXPECT_EQ(AwaitCommitted("workers", "handoff", ends), ends);
}

TEST_F(ConsumeIntegrationTest, FailedCommitsAreRetriedAndNothingIsLost) {
  StartSidecar();
  constexpr int kRecords = 1000;
  CreateAndFill("retry", kRecords);
  // The next OffsetCommit requests fail (INVALID_COMMIT_OFFSET_SIZE: not retried by librdkafka).
  harness_->cluster().PushRequestErrors(
      kOffsetCommitApi, std::vector<int>(4, RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE));
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("retriers", {"retry"}));
  std::vector<Record> records = client->Receive(kRecords, /*ack=*/true);
  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  const std::vector<int64_t> ends = Ends("retry");
  EXPECT_EQ(AwaitCommitted("retriers", "retry", ends), ends);
  // The log end is committed although the first commits failed: the retries carried it.
  EXPECT_GE(harness_->consume_metrics().commits_failed.load(), 1);
}

TEST_F(ConsumeIntegrationTest, ALoneRecordGoesOutWithoutWaitingForABatchOrATimer) {
  // A poll that waited for a full batch, or for its timeout, would hold a lone record (and the
  // group's rebalance) for the whole minute; the deadlines below are far shorter.
  SidecarHarness::Options options;
  options.config.consumer_poll_timeout = absl::Seconds(60);
  StartSidecar(std::move(options));
  CreateAndFill("quiet", 0, /*partitions=*/2);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("listeners", {"quiet"}));
  for (int i = 0; i < 3; ++i) {
    const absl::Time sent = absl::Now();
    ASSERT_TRUE(ProduceDirect(harness_->bootstrap(), "quiet", 1, 10, /*partition=*/i % 2).ok());
    std::optional<kafka_sidecar::v1::RecordBatch> batch;
    absl::Notification arrived;
    std::thread reader([&] {
      batch = client->Next();
      arrived.Notify();
    });
    const bool in_time = arrived.WaitForNotificationWithTimeout(absl::Seconds(20));
    if (!in_time) client->Cancel();  // ends the read
    reader.join();
    ASSERT_TRUE(in_time) << "record " << i << " did not come within 20 s";
    ASSERT_TRUE(batch.has_value());
    ASSERT_EQ(batch->records_size(), 1);
    ASSERT_TRUE(client->Ack({batch->records(0).delivery_id()}));
    LOG(INFO) << "record " << i << " arrived after " << absl::Now() - sent;
  }
}

TEST_F(ConsumeIntegrationTest, NackRedeliversBeforeLaterRecordsOfTheKey) {
  StartSidecar();
  CreateAndFill("single", 0, /*partitions=*/1);
  ASSERT_TRUE(ProduceDirect(harness_->bootstrap(), "single", 5, 10, /*partition=*/0).ok());
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("nackers", {"single"}, /*max_in_flight=*/1));
  std::vector<std::pair<int64_t, uint32_t>> order;  // offset, attempt
  int nacks = 0;
  while (order.size() < 7) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client->Next();
    ASSERT_TRUE(batch.has_value());
    ASSERT_EQ(batch->records_size(), 1);  // max_in_flight=1
    const Record& r = batch->records(0);
    order.emplace_back(r.offset(), r.delivery_attempt());
    // Nack offset 1 twice, ack everything else.
    if (r.offset() == 1 && nacks < 2) {
      ++nacks;
      ASSERT_TRUE(client->Nack({r.delivery_id()}));
    } else {
      ASSERT_TRUE(client->Ack({r.delivery_id()}));
    }
  }
  EXPECT_EQ(order, (std::vector<std::pair<int64_t, uint32_t>>{
                       {0, 1}, {1, 1}, {1, 2}, {1, 3}, {2, 1}, {3, 1}, {4, 1}}));
  EXPECT_EQ(harness_->consume_metrics().records_nacked.load(), 2);
}

TEST_F(ConsumeIntegrationTest, UnknownAcksAreIgnoredCountedAndTheStreamGoesOn) {
  StartSidecar();
  CreateAndFill("tolerant", 100);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("tolerant", {"tolerant"}, /*max_in_flight=*/10));
  std::optional<kafka_sidecar::v1::RecordBatch> batch = client->Next();
  ASSERT_TRUE(batch.has_value());
  ASSERT_TRUE(client->Ack({999999, 123456789}));
  ASSERT_TRUE(client->Nack({424242}));
  std::vector<uint64_t> ids;
  for (const Record& r : batch->records()) ids.push_back(r.delivery_id());
  ASSERT_TRUE(client->Ack(ids));
  ASSERT_TRUE(client->Ack(ids));  // twice: the second time they are unknown
  std::vector<Record> rest = client->Receive(100 - ids.size(), /*ack=*/true);
  EXPECT_EQ(rest.size(), 100 - ids.size());
  EXPECT_EQ(harness_->consume_metrics().unknown_acks.load(), 3 + static_cast<int64_t>(ids.size()));
}

struct BadConsume {
  std::string name;
  std::vector<ConsumeRequest> requests;
  std::string message;
};

TEST_F(ConsumeIntegrationTest, BadRequestsEndTheStreamWithInvalidArgument) {
  StartSidecar();
  ASSERT_TRUE(harness_->cluster().CreateTopic("fine", 1).ok());
  auto subscribe = [](const std::string& group, std::vector<std::string> topics) {
    ConsumeRequest request;
    request.mutable_subscribe()->set_group(group);
    for (const std::string& t : topics) request.mutable_subscribe()->add_topics(t);
    return request;
  };
  ConsumeRequest ack;
  ack.mutable_ack()->add_delivery_ids(1);
  const std::vector<BadConsume> cases = {
      {"ack first", {ack}, "first message must be a subscribe"},
      {"empty first", {ConsumeRequest()}, "first message must be a subscribe"},
      {"empty group", {subscribe("", {"fine"})}, "subscribe.group"},
      {"no topics", {subscribe("g", {})}, "subscribe.topics"},
      {"empty topic", {subscribe("g", {"fine", ""})}, "subscribe.topics[1]"},
      {"bad topic", {subscribe("g", {"no spaces"})}, "subscribe.topics[0]"},
      {"dot topic", {subscribe("g", {"fine", "."})}, "subscribe.topics[1]"},
      {"dot-dot topic", {subscribe("g", {".."})}, "subscribe.topics[0]"},
      {"long topic", {subscribe("g", {std::string(250, 't')})}, "subscribe.topics[0]"},
      {"long group", {subscribe(std::string(32768, 'g'), {"fine"})}, "subscribe.group"},
      {"second subscribe", {subscribe("g", {"fine"}), subscribe("g", {"fine"})}, "only the first"},
  };
  for (const BadConsume& c : cases) {
    auto client = Open();
    for (const ConsumeRequest& request : c.requests) client->Send(request);
    grpc::Status status = client->AwaitEnd();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(status.error_message(), HasSubstr(c.message)) << c.name;
  }
  // The sidecar goes on serving.
  CreateAndFill("after", 10, 1);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("g2", {"after"}));
  EXPECT_EQ(client->Receive(10, true).size(), 10u);
}

TEST_F(ConsumeIntegrationTest, RequestBytesThatDoNotParseEndTheStreamWithInvalidArgument) {
  StartSidecar();
  ASSERT_TRUE(harness_->cluster().CreateTopic("fine", 1).ok());
  const std::string method = "/kafka_sidecar.v1.KafkaSidecar/Consume";
  const std::string garbage = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";  // no varint
  ConsumeRequest subscribe;
  subscribe.mutable_subscribe()->set_group("g");
  subscribe.mutable_subscribe()->add_topics("fine");
  for (const auto& requests : std::vector<std::vector<std::string>>{
           {garbage}, {subscribe.SerializeAsString(), garbage}}) {
    RawCallResult call = RawStreamCall(harness_->target(), method, requests, absl::Seconds(30));
    EXPECT_EQ(call.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << requests.size() << ": " << call.status.error_message();
    EXPECT_THAT(call.status.error_message(), HasSubstr("kafka_sidecar.v1.ConsumeRequest"));
    EXPECT_EQ(call.responses, static_cast<int>(requests.size()) - 1);  // Subscribed, if asked
  }
}

TEST_F(ConsumeIntegrationTest, AStreamPastMaxSubscriptionsEndsWithResourceExhausted) {
  SidecarHarness::Options options;
  options.config.max_subscriptions = 2;
  options.config.unsubscribe_linger = absl::ZeroDuration();
  StartSidecar(std::move(options));
  CreateAndFill("capped", 0);
  auto a = Open();
  ASSERT_TRUE(a->Subscribe("cap-a", {"capped"}));
  auto b = Open();
  ASSERT_TRUE(b->Subscribe("cap-b", {"capped"}));
  // Another stream of a subscription already held needs no new one.
  auto a2 = Open();
  ASSERT_TRUE(a2->Subscribe("cap-a", {"capped"}));

  auto c = Open();
  c->Subscribe("cap-c", {"capped"});
  grpc::Status refused = c->AwaitEnd();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("--max_subscriptions"));
  EXPECT_THAT(refused.error_message(), HasSubstr("'cap-c'"));

  // A subscription that leaves its group makes room.
  EXPECT_TRUE(b->Finish().ok());
  std::unique_ptr<ConsumeClient> later;
  EXPECT_TRUE(WaitUntil(
      [&] {
        later = Open();
        return later->Subscribe("cap-c", {"capped"});
      },
      absl::Seconds(30), absl::Milliseconds(100)));
}

TEST_F(ConsumeIntegrationTest, MissingTopicEndsTheStreamWithNotFound) {
  StartSidecar();
  harness_->cluster().SetTopicError("nowhere", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto client = Open();
  client->Subscribe("lost", {"nowhere"});
  grpc::Status status = client->AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("nowhere"));
}

TEST_F(ConsumeIntegrationTest, UnauthorizedTopicEndsTheStreamWithPermissionDenied) {
  StartSidecar();
  harness_->cluster().SetTopicError("secret", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  auto client = Open();
  client->Subscribe("spies", {"secret"});
  grpc::Status status = client->AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("secret"));
}

TEST_F(ConsumeIntegrationTest, KafkaUnreachablePastTheTimeoutEndsTheStreamWithUnavailable) {
  SidecarHarness::Options options;
  // Before the group is joined (the mock's first round takes 3 s, over 6 s on a loaded machine
  // under ASan) the subscription hears from Kafka through its metadata checks, every tenth of
  // this timeout.
  options.config.kafka_unavailable_timeout = absl::Seconds(5);
  StartSidecar(std::move(options));
  CreateAndFill("fragile", 10);
  auto client = Open();
  ASSERT_TRUE(client->Subscribe("patient", {"fragile"}));
  ASSERT_EQ(client->Receive(10, /*ack=*/true).size(), 10u);
  harness_->SetAllBrokersDown();
  grpc::Status status = client->AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("unreachable"));
}

}  // namespace
}  // namespace kafka_sidecar::testing
