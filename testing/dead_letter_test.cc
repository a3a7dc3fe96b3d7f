// Poison records against the real sidecar binary and the embedded Kafka cluster, checked by a
// real gRPC client and plain librdkafka clients: retries back off, a record given up on lands
// in the dead-letter topic with its dlq.* headers and only then is committed past, failed
// dead-letter writes are retried, and records waiting for a retry survive a SIGTERM.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/embedded_cluster.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;
constexpr int kProduceApi = 0;                 // Kafka's API key
constexpr int kTopicAuthorizationFailed = 29;  // Kafka's error code: a permanent refusal
const std::vector<std::string> kFlags = {
    "--kafka_config=session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10",
    "--commit_interval_ms=200", "--shutdown_grace_ms=1000"};

// The sidecar's /metrics value of `name` (a sample without labels), or -1.
int64_t MetricValue(int port, const std::string& name) {
  const auto [status, body] = HttpGet(port, "/metrics");
  if (status != 200) return -1;
  const std::string prefix = absl::StrCat("kafka_sidecar_", name, " ");
  for (size_t at = body.find(prefix); at != std::string::npos; at = body.find(prefix, at + 1)) {
    if (at == 0 || body[at - 1] == '\n') {
      return std::stoll(body.substr(at + prefix.size()));
    }
  }
  return -1;
}

class DeadLetterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
        broker::EmbeddedCluster::Create(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    ASSERT_TRUE(cluster_->CreateTopic("payments", kPartitions).ok());
    ASSERT_TRUE(cluster_->CreateTopic("payments.dlq", 1).ok());
  }

  const std::string& bootstrap() const { return cluster_->bootstrap_servers(); }

  // Ten records: keys key-0 .. key-9 in turn.
  void ProduceTen() { ASSERT_TRUE(ProduceDirect(bootstrap(), "payments", 10, 20).ok()); }

  std::unique_ptr<SidecarProcess> StartSidecar(const std::string& name) {
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
        SidecarProcess::Start(bootstrap(), kFlags, name);
    EXPECT_TRUE(sidecar.ok()) << sidecar.status();
    return sidecar.ok() ? *std::move(sidecar) : nullptr;
  }

  static kafka_sidecar::v1::Subscribe Policies(uint32_t min_backoff_ms, uint32_t max_attempts) {
    kafka_sidecar::v1::Subscribe subscribe;
    subscribe.set_group("billing");
    subscribe.add_topics("payments");
    subscribe.mutable_retry_policy()->set_min_backoff_ms(min_backoff_ms);
    subscribe.mutable_retry_policy()->set_max_backoff_ms(std::max<uint32_t>(min_backoff_ms, 10000));
    subscribe.mutable_dead_letter_policy()->set_topic("payments.dlq");
    subscribe.mutable_dead_letter_policy()->set_max_delivery_attempts(max_attempts);
    return subscribe;
  }

  // The group's committed offsets once they equal the topic's ends (checked every 50 ms for
  // up to 30 s); the last ones read otherwise.
  std::vector<int64_t> AwaitCommittedToTheEnd() {
    absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap(), "payments", kPartitions);
    EXPECT_TRUE(ends.ok()) << ends.status();
    std::vector<int64_t> committed;
    WaitUntil(
        [&] {
          auto read = CommittedOffsets(bootstrap(), "billing", "payments", kPartitions);
          if (read.ok()) committed = *read;
          return ends.ok() && committed == *ends;
        },
        absl::Seconds(30), absl::Milliseconds(50));
    return committed;
  }

  std::unique_ptr<broker::EmbeddedCluster> cluster_;
};

std::map<std::string, std::string> Headers(const ConsumedRecord& record) {
  std::map<std::string, std::string> headers;
  for (const auto& [key, value] : record.headers) headers[key] = value;
  return headers;
}

TEST_F(DeadLetterTest, NackedRecordBacksOffThenGoesToTheDeadLetterTopicWhileOtherKeysFlow) {
  ProduceTen();
  auto sidecar = StartSidecar("backoff");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/300, /*max_attempts=*/3)));

  // key-0's first record is the poison: nacked every time. Everything else is acked. Ten more
  // records (key-0 .. key-9 again) are produced right after its first nack.
  std::optional<Record> poison;
  std::vector<absl::Time> deliveries, nacks;  // of the poison
  std::optional<absl::Time> later_key0;       // when key-0's next record arrived
  std::vector<absl::Time> later_others;       // when the other keys' next records arrived
  int first_wave = 0;
  while (!later_key0.has_value() || later_others.size() < 9) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value()) << "the stream ended: " << client.AwaitEnd().error_message();
    const absl::Time now = absl::Now();
    std::vector<uint64_t> acks;
    for (const Record& r : batch->records()) {
      if (r.key() == "key-0" && (!poison.has_value() || r.offset() == poison->offset())) {
        if (!poison.has_value()) poison = r;
        EXPECT_EQ(r.delivery_attempt(), deliveries.size() + 1);
        deliveries.push_back(now);
        ASSERT_LE(deliveries.size(), 3u) << "delivered again after its last attempt";
        ASSERT_TRUE(client.Nack({r.delivery_id()}, /*dead_letter=*/false, "bad amount"));
        nacks.push_back(absl::Now());
        if (nacks.size() == 1) ProduceTen();
        continue;
      }
      acks.push_back(r.delivery_id());
      if (!poison.has_value() || first_wave < 9) {
        ++first_wave;
      } else if (r.key() == "key-0") {
        later_key0 = now;
      } else {
        later_others.push_back(now);
      }
    }
    if (!acks.empty()) ASSERT_TRUE(client.Ack(acks));
  }

  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_GE(deliveries[1] - nacks[0], absl::Milliseconds(300));
  EXPECT_GE(deliveries[2] - nacks[1], absl::Milliseconds(600));
  EXPECT_GT(*later_key0, nacks[2]) << "key-0's later record overtook the poison";
  for (absl::Time t : later_others) {
    EXPECT_LT(t, deliveries[2]) << "other keys waited for the poison's backoff";
  }

  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(bootstrap(), "payments.dlq", 1, absl::Seconds(10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].key, std::optional<std::string>("key-0"));
  EXPECT_EQ((*dead)[0].value, poison->value());
  const std::map<std::string, std::string> headers = Headers((*dead)[0]);
  EXPECT_EQ(headers.at("dlq.original.topic"), "payments");
  EXPECT_EQ(headers.at("dlq.original.partition"), absl::StrCat(poison->partition()));
  EXPECT_EQ(headers.at("dlq.original.offset"), absl::StrCat(poison->offset()));
  EXPECT_EQ(headers.at("dlq.original.timestamp_ms"), absl::StrCat(poison->timestamp_ms()));
  EXPECT_EQ(headers.at("dlq.group"), "billing");
  EXPECT_EQ(headers.at("dlq.delivery.attempts"), "3");
  EXPECT_EQ(headers.at("dlq.reason"), "bad amount");

  // Everything counts as done now, the poison included.
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap(), "payments", kPartitions);
  ASSERT_TRUE(ends.ok());
  EXPECT_EQ(AwaitCommittedToTheEnd(), *ends);
  EXPECT_EQ(MetricValue(sidecar->metrics_port(), "records_dead_lettered_total"), 1);
  EXPECT_EQ(MetricValue(sidecar->metrics_port(), "records_retried_total"), 2);
}

TEST_F(DeadLetterTest, ANackAskingForTheDeadLetterTopicSendsTheRecordThereAtOnce) {
  ProduceTen();
  auto sidecar = StartSidecar("at-once");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/60000, /*max_attempts=*/0)));
  std::optional<Record> poison;
  int acked = 0;
  while (acked < 9 || !poison.has_value()) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value());
    for (const Record& r : batch->records()) {
      ASSERT_FALSE(poison.has_value() && r.offset() == poison->offset() &&
                   r.partition() == poison->partition())
          << "a record sent to the dead-letter topic came again";
      if (r.key() == "key-3" && !poison.has_value()) {
        poison = r;
        ASSERT_TRUE(client.Nack({r.delivery_id()}, /*dead_letter=*/true, "poison"));
      } else {
        ASSERT_TRUE(client.Ack({r.delivery_id()}));
        ++acked;
      }
    }
  }
  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(bootstrap(), "payments.dlq", 1, absl::Seconds(10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.delivery.attempts"), "1");
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.reason"), "poison");
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap(), "payments", kPartitions);
  ASSERT_TRUE(ends.ok());
  EXPECT_EQ(AwaitCommittedToTheEnd(), *ends);
}

TEST_F(DeadLetterTest, FailedDeadLetterWritesAreRetriedAndTheRecordIsNotCommittedMeanwhile) {
  ProduceTen();
  auto sidecar = StartSidecar("failing");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/0, /*max_attempts=*/1)));
  // Kafka refuses the next four produce requests: the dead-letter write fails four times.
  cluster_->PushRequestErrors(kProduceApi, std::vector<int>(4, kTopicAuthorizationFailed));

  std::optional<Record> poison;
  int acked = 0;
  while (acked < 9 || !poison.has_value()) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value());
    for (const Record& r : batch->records()) {
      if (r.key() == "key-5" && !poison.has_value()) {
        poison = r;
        ASSERT_TRUE(client.Nack({r.delivery_id()}));  // its last attempt
      } else {
        ASSERT_TRUE(client.Ack({r.delivery_id()}));
        ++acked;
      }
    }
  }
  // While the writes fail, the other partitions are committed to their ends and the poison's
  // partition never past it.
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap(), "payments", kPartitions);
  ASSERT_TRUE(ends.ok());
  const int p = poison->partition();
  bool others_done = false;
  std::vector<int64_t> committed;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto read = CommittedOffsets(bootstrap(), "billing", "payments", kPartitions);
        if (!read.ok()) return false;
        committed = *read;
        EXPECT_LE(committed[p], poison->offset()) << "committed past a record not yet written";
        others_done = true;
        for (int i = 0; i < kPartitions; ++i) {
          if (i != p && committed[i] != (*ends)[i]) others_done = false;
        }
        return others_done && MetricValue(sidecar->metrics_port(),
                                          "dead_letter_write_failures_total") >= 1;
      },
      absl::Seconds(30), absl::Milliseconds(50)))
      << "the other partitions were not committed, or no write failed";

  // The writes go on until one succeeds: the poison is there once and committed past.
  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(bootstrap(), "payments.dlq", 1, absl::Seconds(30));
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.original.offset"), absl::StrCat(poison->offset()));
  EXPECT_EQ(AwaitCommittedToTheEnd(), *ends);
  EXPECT_GE(MetricValue(sidecar->metrics_port(), "dead_letter_write_failures_total"), 1);
  EXPECT_EQ(MetricValue(sidecar->metrics_port(), "records_dead_lettered_total"), 1);
}

TEST_F(DeadLetterTest, RecordsWaitingForARetryAreNotCommittedAtSigtermAndComeBackAfterARestart) {
  ProduceTen();
  std::optional<Record> poison;
  {
    auto sidecar = StartSidecar("before-restart");
    ASSERT_NE(sidecar, nullptr);
    auto stub = sidecar->NewStub();
    ConsumeClient client(*stub, absl::Seconds(90));
    ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/60000, /*max_attempts=*/5)));
    int acked = 0;
    while (acked < 9 || !poison.has_value()) {
      std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
      ASSERT_TRUE(batch.has_value());
      for (const Record& r : batch->records()) {
        if (r.key() == "key-7" && !poison.has_value()) {
          poison = r;
          ASSERT_TRUE(client.Nack({r.delivery_id()}));  // waits a minute for its retry
        } else {
          ASSERT_TRUE(client.Ack({r.delivery_id()}));
          ++acked;
        }
      }
    }
    sidecar->process().Signal(SIGTERM);
    absl::StatusOr<int> exit = sidecar->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);
  }
  absl::StatusOr<std::vector<int64_t>> committed =
      CommittedOffsets(bootstrap(), "billing", "payments", kPartitions);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_LE((*committed)[poison->partition()], poison->offset());

  auto sidecar = StartSidecar("after-restart");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/60000, /*max_attempts=*/5)));
  bool came_back = false;
  while (!came_back) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value());
    for (const Record& r : batch->records()) {
      came_back |= r.partition() == poison->partition() && r.offset() == poison->offset();
      ASSERT_TRUE(client.Ack({r.delivery_id()}));
    }
  }
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(bootstrap(), "payments", kPartitions);
  ASSERT_TRUE(ends.ok());
  EXPECT_EQ(AwaitCommittedToTheEnd(), *ends);
}

TEST_F(DeadLetterTest, BadPoliciesAreRefusedNamingTheField) {
  auto sidecar = StartSidecar("refusals");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  auto status_of = [&stub](const kafka_sidecar::v1::Subscribe& subscribe) {
    ConsumeClient client(*stub, absl::Seconds(30));
    EXPECT_FALSE(client.Subscribe(subscribe));
    return client.AwaitEnd();
  };
  kafka_sidecar::v1::Subscribe no_topic = Policies(100, 3);
  no_topic.mutable_dead_letter_policy()->clear_topic();
  grpc::Status status = status_of(no_topic);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("subscribe.dead_letter_policy.topic"));

  kafka_sidecar::v1::Subscribe inverted = Policies(5000, 3);
  inverted.mutable_retry_policy()->set_max_backoff_ms(1000);
  status = status_of(inverted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("subscribe.retry_policy.max_backoff_ms"));

  // A second stream of the subscription asking for other policies.
  ConsumeClient first(*stub, absl::Seconds(30));
  ASSERT_TRUE(first.Subscribe(Policies(100, 3)));
  status = status_of(Policies(100, 4));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("subscribe.dead_letter_policy"));
  EXPECT_TRUE(first.Finish().ok());
}

}  // namespace
}  // namespace kafka_sidecar::testing
