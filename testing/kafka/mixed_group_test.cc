// A consumer group whose members do not all offer a common partition assignment strategy, on
// Apache Kafka itself (librdkafka 2.0.2's mock cluster aborts on such a JoinGroup): plain
// librdkafka members with librdkafka's default `range,roundrobin` and a sidecar with its default
// `cooperative-sticky`. Kafka refuses the JoinGroup of whichever member comes second
// (INCONSISTENT_GROUP_PROTOCOL), so the group goes on with the first:
//   - a sidecar that comes second ends its streams with FAILED_PRECONDITION naming
//     --assignment_strategy, counts it on /metrics and leaves, so a later stream tries again;
//     the members already in the group keep their partitions;
//   - a member that comes second to a sidecar is refused, again and again, and the sidecar goes
//     on consuming: no rebalance, its partitions stay, its stream keeps receiving records.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "testing/consume_client.h"
#include "testing/kafka/shared_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::Record;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;
// librdkafka's default strategies (and, as `range` then `cooperative-sticky`, the Java
// client's): what a group of existing consumers most likely offers.
const std::vector<std::pair<std::string, std::string>> kEagerDefaults = {
    {"partition.assignment.strategy", "range,roundrobin"}};
// Bounds, not expectations: a loaded 2-core machine running a JVM broker beside the test.
constexpr absl::Duration kGroupBound = absl::Seconds(60);
constexpr absl::Duration kStreamBound = absl::Seconds(90);

const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);
std::string Bootstrap() { return SharedKafka::Get().bootstrap(); }

// A sidecar with its default --assignment_strategy (cooperative-sticky).
std::unique_ptr<SidecarProcess> StartSidecar(const std::string& name) {
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
      Bootstrap(),
      {"--kafka_config=fetch.wait.max.ms=10,session.timeout.ms=6000,heartbeat.interval.ms=500",
       "--commit_interval_ms=200"},
      name);
  EXPECT_TRUE(sidecar.ok()) << sidecar.status();
  return sidecar.ok() ? *std::move(sidecar) : nullptr;
}

std::string Scrape(const SidecarProcess& sidecar) {
  return HttpGet(sidecar.metrics_port(), "/metrics").second;
}


std::string GroupSeries(const std::string& name, const std::string& group,
                        const std::string& topic) {
  return absl::StrCat("kafka_sidecar_", name, "{group=\"", group, "\",topics=\"", topic, "\"}");
}

constexpr char kMismatches[] = "kafka_sidecar_group_protocol_mismatches_total";

// Kafka's own view of `group`: settled, with one member, on `protocol`. (A rebalance under way
// would show as PreparingRebalance: the members here serve the group only when the test polls
// them, so one would not finish by itself.)
void ExpectOneStableMember(const std::string& group, const std::string& protocol) {
  absl::StatusOr<GroupDescription> described =
      DescribeGroup(Bootstrap(), group, absl::Seconds(10));
  ASSERT_TRUE(described.ok()) << described.status();
  EXPECT_EQ(described->state, "Stable");
  EXPECT_EQ(described->protocol, protocol);
  EXPECT_EQ(described->members, 1);
}

TEST(MixedGroupTest, ASidecarJoiningAGroupOfEagerMembersEndsItsStreamNamingTheFlag) {
  const std::string topic = "mixed-first-plain";
  const std::string group = "mixed-first-plain-readers";
  ASSERT_TRUE(CreateTopic(Bootstrap(), topic, kPartitions, 1).ok());

  // The group exists with a plain member offering range and roundrobin: it holds every
  // partition.
  absl::StatusOr<std::unique_ptr<GroupMember>> plain =
      GroupMember::Join(Bootstrap(), group, topic, kEagerDefaults);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_THAT((*plain)->WaitForAssignment(kPartitions, kGroupBound), ElementsAre(0, 1, 2));

  auto sidecar = StartSidecar("mixed-first-plain");
  ASSERT_NE(sidecar, nullptr);
  ASSERT_GT(sidecar->metrics_port(), 0);
  EXPECT_EQ(MetricValue(Scrape(*sidecar), kMismatches), 0);
  auto stub = sidecar->NewStub();

  // A sidecar stream subscribes: Kafka refuses the sidecar's JoinGroup, and the stream ends
  // saying why instead of waiting forever.
  ConsumeClient stream(*stub, kStreamBound);
  ASSERT_TRUE(stream.Subscribe(group, {topic}));
  const absl::Time subscribed = absl::Now();
  const grpc::Status end = stream.AwaitEnd();
  std::cout << "a sidecar coming second to a range,roundrobin member: its stream ended "
            << absl::Now() - subscribed << " after Subscribed: " << end.error_message() << "\n";
  EXPECT_EQ(end.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << end.error_message() << "\nThe sidecar's log:\n"
      << sidecar->process().Log();
  EXPECT_THAT(end.error_message(), HasSubstr("--assignment_strategy"));
  EXPECT_THAT(end.error_message(), HasSubstr("cooperative-sticky"));
  EXPECT_THAT(end.error_message(), HasSubstr("INCONSISTENT_GROUP_PROTOCOL"));
  // Counted before the stream was ended.
  EXPECT_EQ(MetricValue(Scrape(*sidecar), kMismatches), 1);

  // The subscription left: no membership, no stream of it.
  const absl::Time ended = absl::Now();
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::string page = Scrape(*sidecar);
        return MetricValue(page, "kafka_sidecar_subscriptions") == 0 &&
               MetricValue(page, "kafka_sidecar_consume_streams") == 0;
      },
      kGroupBound, absl::Milliseconds(50)))
      << Scrape(*sidecar);
  std::cout << "its membership was gone from /metrics " << absl::Now() - ended
            << " after the stream ended\n";

  // The plain member was never disturbed: the group did not rebalance, and it still holds
  // every partition.
  ExpectOneStableMember(group, "range");
  EXPECT_THAT((*plain)->Assignment(), ElementsAre(0, 1, 2));

  // A later stream makes a new membership, which tries again (and, the group being unchanged,
  // ends the same way).
  ConsumeClient again(*stub, kStreamBound);
  ASSERT_TRUE(again.Subscribe(group, {topic}));
  const grpc::Status end_again = again.AwaitEnd();
  EXPECT_EQ(end_again.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << end_again.error_message();
  EXPECT_THAT(end_again.error_message(), HasSubstr("--assignment_strategy"));
  EXPECT_EQ(MetricValue(Scrape(*sidecar), kMismatches), 2);
  ExpectOneStableMember(group, "range");
  EXPECT_THAT((*plain)->Assignment(), ElementsAre(0, 1, 2));
  (*plain)->Close();
}

TEST(MixedGroupTest, AnEagerMemberJoiningASidecarsGroupIsRefusedAndTheSidecarKeepsConsuming) {
  constexpr int kEach = 30;
  const std::string topic = "mixed-first-sidecar";
  const std::string group = "mixed-first-sidecar-readers";
  ASSERT_TRUE(CreateTopic(Bootstrap(), topic, kPartitions, 1).ok());
  ASSERT_TRUE(ProduceDirect(Bootstrap(), topic, kEach, 10).ok());

  // The sidecar's stream comes first: the group gives it every partition and it consumes.
  auto sidecar = StartSidecar("mixed-first-sidecar");
  ASSERT_NE(sidecar, nullptr);
  ASSERT_GT(sidecar->metrics_port(), 0);
  auto stub = sidecar->NewStub();
  ConsumeClient stream(*stub, absl::Minutes(5));
  ASSERT_TRUE(stream.Subscribe(group, {topic}));
  ASSERT_EQ(stream.Receive(kEach, /*ack=*/true).size(), static_cast<size_t>(kEach));
  const std::string assigned = GroupSeries("assigned_partitions", group, topic);
  std::string page;
  ASSERT_TRUE(WaitUntil(
      [&] {
        page = Scrape(*sidecar);
        return MetricValue(page, assigned) == kPartitions;
      },
      kGroupBound, absl::Milliseconds(50)))
      << page;
  const int64_t rebalances = MetricValue(page, "kafka_sidecar_rebalances_total");

  // A plain member offering range and roundrobin joins: Kafka refuses it. It gets nothing, and
  // keeps being refused as librdkafka retries.
  const absl::Time joined = absl::Now();
  absl::StatusOr<std::unique_ptr<GroupMember>> plain =
      GroupMember::Join(Bootstrap(), group, topic, kEagerDefaults);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->WaitForError(kGroupBound), "INCONSISTENT_GROUP_PROTOCOL");
  const absl::Time refused = absl::Now();
  EXPECT_EQ((*plain)->WaitForError(kGroupBound), "INCONSISTENT_GROUP_PROTOCOL");
  std::cout << "a range,roundrobin member coming second to a sidecar: refused "
            << refused - joined << " after it started, and again " << absl::Now() - refused
            << " later\n";
  EXPECT_THAT((*plain)->Assignment(), ::testing::IsEmpty());
  ExpectOneStableMember(group, "cooperative-sticky");

  // The sidecar goes on as before: the stream is open and receives what is produced now, from
  // every partition, with no rebalance and nothing counted as a mismatch.
  ASSERT_TRUE(ProduceDirect(Bootstrap(), topic, kEach, 10).ok());
  const std::vector<Record> later = stream.Receive(kEach, /*ack=*/true);
  ASSERT_EQ(later.size(), static_cast<size_t>(kEach));
  std::vector<bool> seen(kPartitions, false);
  for (const Record& r : later) {
    EXPECT_EQ(r.delivery_attempt(), 1u);
    seen.at(r.partition()) = true;
  }
  EXPECT_THAT(seen, ::testing::Each(true));
  page = Scrape(*sidecar);
  EXPECT_EQ(MetricValue(page, assigned), kPartitions) << page;
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_rebalances_total"), rebalances) << page;
  EXPECT_EQ(MetricValue(page, kMismatches), 0) << page;
  EXPECT_EQ(MetricValue(page, GroupSeries("subscription_streams", group, topic)), 1) << page;
  EXPECT_THAT((*plain)->Assignment(), ::testing::IsEmpty());
  ExpectOneStableMember(group, "cooperative-sticky");

  (*plain)->Close();
  stream.Cancel();
}

}  // namespace
}  // namespace kafka_sidecar::testing
