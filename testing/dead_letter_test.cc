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
#include "testing/dead_letter_scenario.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

constexpr int kProduceApi = 0;                 // Kafka's API key
constexpr int kTopicAuthorizationFailed = 29;  // Kafka's error code: a permanent refusal
const std::vector<std::string> kFlags = {
    "--kafka_config=session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10",
    "--commit_interval_ms=200", "--shutdown_grace_ms=1000"};

class DeadLetterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
        broker::EmbeddedCluster::Create(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    setup_.bootstrap = cluster_->bootstrap_servers();
    ASSERT_TRUE(cluster_->CreateTopic(setup_.topic, setup_.partitions).ok());
    ASSERT_TRUE(cluster_->CreateTopic(setup_.dead_letter_topic, 1).ok());
  }

  std::unique_ptr<SidecarProcess> StartSidecar(const std::string& name) {
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
        SidecarProcess::Start(setup_.bootstrap, kFlags, name);
    EXPECT_TRUE(sidecar.ok()) << sidecar.status();
    return sidecar.ok() ? *std::move(sidecar) : nullptr;
  }

  kafka_sidecar::v1::Subscribe Policies(uint32_t min_backoff_ms, uint32_t max_attempts) const {
    return PoisonPolicies(setup_, min_backoff_ms, max_attempts);
  }

  // The sidecar's /metrics value of `series`.
  static int64_t Metric(const SidecarProcess& sidecar, const std::string& series) {
    return MetricValue(HttpGet(sidecar.metrics_port(), "/metrics").second,
                       "kafka_sidecar_" + series);
  }

  std::unique_ptr<broker::EmbeddedCluster> cluster_;
  DeadLetterSetup setup_;
};

TEST_F(DeadLetterTest, NackedRecordBacksOffThenGoesToTheDeadLetterTopicWhileOtherKeysFlow) {
  auto sidecar = StartSidecar("backoff");
  ASSERT_NE(sidecar, nullptr);
  ExpectBackoffThenDeadLetter(setup_, *sidecar);
}

TEST_F(DeadLetterTest, ANackAskingForTheDeadLetterTopicSendsTheRecordThereAtOnce) {
  ProduceTen(setup_);
  auto sidecar = StartSidecar("at-once");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/60000, /*max_attempts=*/0)));
  // Without a nack on its last attempt (max 0) it goes only when asked, and never comes again.
  ASSERT_TRUE(NackOneAckTheRest(client, "key-3", /*dead_letter=*/true, "poison").has_value());
  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(setup_.bootstrap, setup_.dead_letter_topic, 1, absl::Seconds(10));
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.delivery.attempts"), "1");
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.reason"), "poison");
  ExpectCommittedToTheEnd(setup_);
}

TEST_F(DeadLetterTest, FailedDeadLetterWritesAreRetriedAndTheRecordIsNotCommittedMeanwhile) {
  ProduceTen(setup_);
  auto sidecar = StartSidecar("failing");
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  ConsumeClient client(*stub, absl::Seconds(90));
  ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/0, /*max_attempts=*/1)));
  // Kafka refuses the next two produce requests: the dead-letter write fails (librdkafka may
  // count a refusal twice, as a failed write and as the topic's metadata gone), and each
  // failure doubles the wait before the next try (200 ms, 400 ms, ...).
  cluster_->PushRequestErrors(kProduceApi, std::vector<int>(2, kTopicAuthorizationFailed));

  // Nacked on its last attempt (max 1).
  const std::optional<Record> poison =
      NackOneAckTheRest(client, "key-5", /*dead_letter=*/false, "bad");
  ASSERT_TRUE(poison.has_value());
  // While the writes fail, the other partitions are committed to their ends and the poison's
  // partition never past it.
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(setup_.bootstrap, setup_.topic, setup_.partitions);
  ASSERT_TRUE(ends.ok());
  const int p = poison->partition();
  bool others_done = false;
  std::vector<int64_t> committed;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto read =
            CommittedOffsets(setup_.bootstrap, setup_.group, setup_.topic, setup_.partitions);
        if (!read.ok()) return false;
        committed = *read;
        EXPECT_LE(committed[p], poison->offset()) << "committed past a record not yet written";
        others_done = true;
        for (int i = 0; i < setup_.partitions; ++i) {
          if (i != p && committed[i] != (*ends)[i]) others_done = false;
        }
        return others_done && Metric(*sidecar, "dead_letter_write_failures_total") >= 1;
      },
      absl::Seconds(30), absl::Milliseconds(50)))
      << "the other partitions were not committed, or no write failed";

  // The writes go on until one succeeds: the poison is there once and committed past.
  absl::StatusOr<std::vector<ConsumedRecord>> dead =
      ReadTopic(setup_.bootstrap, setup_.dead_letter_topic, 1, absl::Seconds(30));
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(Headers((*dead)[0]).at("dlq.original.offset"), absl::StrCat(poison->offset()));
  ExpectCommittedToTheEnd(setup_);
  EXPECT_GE(Metric(*sidecar, "dead_letter_write_failures_total"), 1);
  EXPECT_EQ(Metric(*sidecar, "records_dead_lettered_total"), 1);
}

TEST_F(DeadLetterTest, RecordsWaitingForARetryAreNotCommittedAtSigtermAndComeBackAfterARestart) {
  ProduceTen(setup_);
  std::optional<Record> poison;
  {
    auto sidecar = StartSidecar("before-restart");
    ASSERT_NE(sidecar, nullptr);
    auto stub = sidecar->NewStub();
    ConsumeClient client(*stub, absl::Seconds(90));
    ASSERT_TRUE(client.Subscribe(Policies(/*min_backoff_ms=*/60000, /*max_attempts=*/5)));
    // It waits a minute for its retry.
    poison = NackOneAckTheRest(client, "key-7", /*dead_letter=*/false, "later");
    ASSERT_TRUE(poison.has_value());
    sidecar->process().Signal(SIGTERM);
    absl::StatusOr<int> exit = sidecar->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);
  }
  absl::StatusOr<std::vector<int64_t>> committed =
      CommittedOffsets(setup_.bootstrap, setup_.group, setup_.topic, setup_.partitions);
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
  ExpectCommittedToTheEnd(setup_);
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
