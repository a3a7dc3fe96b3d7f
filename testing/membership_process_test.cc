// Several sidecars (real processes) in one consumer group against the embedded cluster: they
// split the partitions, a sidecar whose app stops consuming hands its partitions over, and a
// member joining while records are in flight moves partitions without losing or repeating
// acked records and without breaking per-key order.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "broker/embedded_cluster.h"
#include "testing/consuming_app.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

constexpr int kPartitions = 6;
constexpr char kTestKafkaConfig[] =
    "--kafka_config=session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10";
// Only the commits on revoke and on leaving count in these tests.
constexpr char kNoPeriodicCommits[] = "--commit_interval_ms=600000";

using Position = std::pair<int32_t, int64_t>;

std::unique_ptr<SidecarProcess> StartSidecar(const broker::EmbeddedCluster& cluster,
                                             const std::string& name,
                                             std::vector<std::string> flags = {}) {
  // The test settings come first: a later --kafka_config replaces them.
  flags.insert(flags.begin(), {kTestKafkaConfig, kNoPeriodicCommits});
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      SidecarProcess::Start(cluster.bootstrap_servers(), flags, name);
  EXPECT_TRUE(sidecar.ok()) << sidecar.status();
  return sidecar.ok() ? *std::move(sidecar) : nullptr;
}

// One pod: a sidecar process and its app's Consume stream.
struct Pod {
  std::unique_ptr<SidecarProcess> sidecar;
  std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> stub;
  std::unique_ptr<ConsumingApp> app;  // destroyed first
};

// Starts a pod whose app subscribes to `topic` for `group`, and waits until the group gave it
// partitions; null on failure.
std::unique_ptr<Pod> StartPod(const broker::EmbeddedCluster& cluster, const std::string& name,
                              const std::string& group, const std::string& topic,
                              uint32_t max_in_flight, DeliveryLog& log,
                              std::vector<std::string> flags = {}) {
  auto pod = std::make_unique<Pod>();
  pod->sidecar = StartSidecar(cluster, name, std::move(flags));
  if (pod->sidecar == nullptr) return nullptr;
  pod->stub = pod->sidecar->NewStub();
  pod->app = std::make_unique<ConsumingApp>(name, *pod->stub, group,
                                            std::vector<std::string>{topic}, max_in_flight, log);
  EXPECT_TRUE(pod->app->subscribed()) << name;
  const bool assigned = pod->sidecar->process().WaitForLog(absl::StrCat("] assigned ", topic, "/"),
                                                           absl::Seconds(30));
  EXPECT_TRUE(assigned) << name << " got no partitions:\n" << pod->sidecar->process().Log();
  return pod->app->subscribed() && assigned ? std::move(pod) : nullptr;
}

std::set<int32_t> PartitionsOf(const std::vector<Delivery>& deliveries, const std::string& app,
                               absl::Time since = absl::InfinitePast()) {
  std::set<int32_t> partitions;
  for (const Delivery& d : deliveries) {
    if (d.app == app && d.received >= since) partitions.insert(d.partition);
  }
  return partitions;
}

std::function<bool(const std::vector<Delivery>&)> AtLeastDistinct(size_t count) {
  return [count](const std::vector<Delivery>& d) { return DistinctRecords(d) >= count; };
}

// Each assignment strategy: cooperative-sticky moves only some partitions; range revokes every
// partition of every member at each rebalance.
class TwoSidecarsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TwoSidecarsTest, SplitThePartitionsAndTheLastConsumingOneTakesThemAll) {
  constexpr int kRecords = 3000;
  constexpr absl::Duration kLinger = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("split", kPartitions).ok());
  const std::vector<std::string> flags = {
      absl::StrCat("--unsubscribe_linger_ms=", absl::ToInt64Milliseconds(kLinger)),
      absl::StrCat("--assignment_strategy=", GetParam())};
  // Records are produced once both are members, so no rebalance happens while they flow.
  DeliveryLog log;
  auto a = StartPod(**cluster, "a", "pods", "split", 100, log, flags);
  ASSERT_NE(a, nullptr);
  auto b = StartPod(**cluster, "b", "pods", "split", 100, log, flags);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(ProduceDirect((*cluster)->bootstrap_servers(), "split", kRecords, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(kRecords), absl::Seconds(60)))
      << DistinctRecords(log.Snapshot()) << " of " << kRecords;

  // Split: each owns some partitions, none is shared, and every record came exactly once.
  std::vector<Delivery> first = log.Snapshot();
  EXPECT_EQ(first.size(), static_cast<size_t>(kRecords)) << "a record was delivered twice";
  const std::set<int32_t> of_a = PartitionsOf(first, "a");
  const std::set<int32_t> of_b = PartitionsOf(first, "b");
  EXPECT_FALSE(of_a.empty());
  EXPECT_FALSE(of_b.empty());
  std::set<int32_t> both;
  std::set_intersection(of_a.begin(), of_a.end(), of_b.begin(), of_b.end(),
                        std::inserter(both, both.begin()));
  EXPECT_TRUE(both.empty()) << "a partition went to both sidecars";
  EXPECT_EQ(of_a.size() + of_b.size(), static_cast<size_t>(kPartitions));

  // a's app stops consuming: after the linger a commits what its app acked and leaves; b owns
  // every partition and goes on from a's commits.
  EXPECT_TRUE(a->app->Finish().ok());
  const absl::Time a_ended = absl::Now();
  ASSERT_TRUE(ProduceDirect((*cluster)->bootstrap_servers(), "split", kRecords, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(2 * kRecords), kLinger + absl::Seconds(60)))
      << DistinctRecords(log.Snapshot()) << " of " << 2 * kRecords;
  std::vector<Delivery> all = log.Snapshot();
  if (GetParam() != "range") {
    EXPECT_EQ(all.size(), static_cast<size_t>(2 * kRecords))
        << "records acked on a were delivered again by b";
  } else {
    // With an eager strategy b gives up its own partitions too and commits them first; the
    // mock coordinator refuses commits while the group rebalances (REBALANCE_IN_PROGRESS; Kafka
    // takes them until the group completes the rebalance), so b may see its acked records
    // again. At least once all the same: nothing is lost (above).
    std::cout << all.size() - 2 * kRecords << " records repeated after the eager rebalance\n";
  }
  EXPECT_EQ(PartitionsOf(all, "b", a_ended).size(), static_cast<size_t>(kPartitions));
  absl::Time took_over = absl::InfinitePast();
  for (const Delivery& d : all) {
    if (d.app == "b" && of_a.count(d.partition) > 0) took_over = std::max(took_over, d.received);
  }
  std::cout << "b delivered a's partitions within " << absl::FormatDuration(took_over - a_ended)
            << " of a's last stream ending (linger " << kLinger << ", " << GetParam() << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Strategies, TwoSidecarsTest,
                         ::testing::Values("cooperative-sticky", "range"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "range" ? "Range" : "CooperativeSticky";
                         });

// Per key, in the order the apps received them: each app sees a key's offsets go up, except
// that a redelivery (its partition came back from Kafka) starts again at a record nobody had
// acked; and the first deliveries of a key's records come in offset order.
void ExpectPerKeyOrder(const std::vector<Delivery>& deliveries) {
  std::vector<Delivery> by_time = deliveries;
  std::stable_sort(by_time.begin(), by_time.end(),
                   [](const Delivery& x, const Delivery& y) { return x.received < y.received; });
  std::map<Position, absl::Time> first_ack;
  for (const Delivery& d : deliveries) {
    auto [it, fresh] = first_ack.try_emplace({d.partition, d.offset}, d.acked);
    if (!fresh) it->second = std::min(it->second, d.acked);
  }
  std::map<std::pair<std::string, std::string>, int64_t> last_of_app_key;
  std::map<std::string, int64_t> last_first_of_key;
  std::set<Position> seen;
  for (const Delivery& d : by_time) {
    auto [app_key, fresh] = last_of_app_key.try_emplace({d.app, d.key}, d.offset);
    if (!fresh) {
      const bool redelivery = first_ack[Position{d.partition, d.offset}] > d.received;
      EXPECT_TRUE(d.offset > app_key->second || redelivery)
          << d.app << " got key " << d.key << " at " << d.offset << " after "
          << app_key->second << ", and not as a redelivery of an unacked record";
      app_key->second = d.offset;
    }
    if (!seen.insert({d.partition, d.offset}).second) continue;
    auto [key, first] = last_first_of_key.try_emplace(d.key, d.offset);
    if (!first) {
      EXPECT_GT(d.offset, key->second) << "key " << d.key << " reached the apps out of order";
      key->second = d.offset;
    }
  }
}

TEST(MembershipProcessTest, AThirdMemberTakesPartitionsWhileRecordsAreInFlight) {
  constexpr int kBatch = 1200;  // records produced at each step, over every partition
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("moves", kPartitions).ok());
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  // Periodic commits as in production: the mock coordinator may refuse the commit on revoke
  // while the group rebalances (Kafka takes it; the two-sidecar test relies on the commit on
  // leaving alone).
  const std::vector<std::string> flags = {"--commit_interval_ms=500"};
  DeliveryLog log;
  auto a = StartPod(**cluster, "a", "movers", "moves", 1000, log, flags);
  ASSERT_NE(a, nullptr);
  auto b = StartPod(**cluster, "b", "movers", "moves", 1000, log, flags);
  ASSERT_NE(b, nullptr);

  // The first records are delivered, acked and committed. Then both apps stop acking and the
  // next records wait in flight on every partition.
  ASSERT_TRUE(ProduceDirect(bootstrap, "moves", kBatch, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(kBatch), absl::Seconds(60)));
  int64_t committed = 0;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       committed < kBatch && absl::Now() < deadline;) {
    // Each read is a round trip to the cluster: the loop waits on Kafka, not on a timer.
    absl::StatusOr<std::vector<int64_t>> offsets =
        CommittedOffsets(bootstrap, "movers", "moves", kPartitions);
    committed = 0;
    for (int64_t offset : offsets.ok() ? *offsets : std::vector<int64_t>()) {
      committed += std::max<int64_t>(offset, 0);
    }
  }
  ASSERT_EQ(committed, kBatch);
  a->app->Hold();
  b->app->Hold();
  ASSERT_TRUE(ProduceDirect(bootstrap, "moves", kBatch, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(2 * kBatch), absl::Seconds(60)));

  // A third member joins: some partitions move to it with records in flight on a and b.
  const absl::Time joined = absl::Now();
  auto c = StartPod(**cluster, "c", "movers", "moves", 1000, log, flags);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(log.WaitUntil(
      [](const std::vector<Delivery>& d) { return !PartitionsOf(d, "c").empty(); },
      absl::Seconds(30)));
  // Acks for moved partitions are stale now; the rest count. More records follow the move.
  a->app->Release();
  b->app->Release();
  ASSERT_TRUE(ProduceDirect(bootstrap, "moves", kBatch, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(3 * kBatch), absl::Seconds(90)))
      << DistinctRecords(log.Snapshot()) << " of " << 3 * kBatch;

  const std::vector<Delivery> all = log.Snapshot();
  const std::set<int32_t> moved = PartitionsOf(all, "c");
  EXPECT_FALSE(moved.empty());
  // Acked before the third member came: never delivered again.
  std::map<Position, absl::Time> acked_before;
  for (const Delivery& d : all) {
    if (d.acked < joined) acked_before[{d.partition, d.offset}] = d.acked;
  }
  for (const Delivery& d : all) {
    auto it = acked_before.find({d.partition, d.offset});
    EXPECT_FALSE(it != acked_before.end() && d.received > it->second)
        << d.app << " got " << d.partition << "/" << d.offset << " again after it was acked";
  }
  // In flight on a or b in a partition that moved: delivered by c.
  std::set<Position> from_c;
  for (const Delivery& d : all) {
    if (d.app == "c") from_c.insert({d.partition, d.offset});
  }
  size_t moved_in_flight = 0;
  for (const Delivery& d : all) {
    if (d.app != "c" && d.received < joined && d.acked >= joined && moved.count(d.partition)) {
      ++moved_in_flight;
      EXPECT_EQ(from_c.count({d.partition, d.offset}), 1u)
          << d.partition << "/" << d.offset << " was in flight on " << d.app
          << " when its partition moved, and c never delivered it";
    }
  }
  EXPECT_GT(moved_in_flight, 0u) << "no record was in flight in a partition that moved";
  ExpectPerKeyOrder(all);
  std::cout << moved.size() << " partitions moved to c with " << moved_in_flight
            << " records in flight; " << all.size() - 3 * kBatch << " deliveries repeated\n";
}

int Occurrences(const std::string& text, const std::string& what) {
  int count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

TEST(MembershipProcessTest, AStaticMemberLeavesWhenItsAppStopsButNotOnShutdown) {
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("static", kPartitions).ok());
  ASSERT_TRUE(ProduceDirect((*cluster)->bootstrap_servers(), "static", 600, 20).ok());
  // librdkafka's protocol log shows each LeaveGroup request the member sends.
  auto sidecar = StartSidecar(
      **cluster, "static",
      {"--group_instance_id=pod-a", "--unsubscribe_linger_ms=200",
       std::string(kTestKafkaConfig) + ",debug=protocol"});
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  constexpr char kLeave[] = "Sent LeaveGroupRequest";
  {
    DeliveryLog log;
    ConsumingApp app("app", *stub, "statics", {"static"}, 100, log);
    ASSERT_TRUE(app.subscribed());
    ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(600), absl::Seconds(30)));
    EXPECT_TRUE(app.Finish().ok());
  }
  // The app stopped consuming: a static member leaves all the same.
  EXPECT_TRUE(sidecar->process().WaitForLog(kLeave, absl::Seconds(20))) << sidecar->process().Log();
  EXPECT_TRUE(sidecar->process().WaitForLog("[statics] left the group", absl::Seconds(20)));

  // A new stream joins again; on SIGTERM the static member keeps its place (no LeaveGroup).
  DeliveryLog log;
  ConsumingApp app("app", *stub, "statics", {"static"}, 100, log);
  ASSERT_TRUE(app.subscribed());
  ASSERT_TRUE(ProduceDirect((*cluster)->bootstrap_servers(), "static", 600, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(600), absl::Seconds(30)));
  sidecar->process().Signal(SIGTERM);
  absl::StatusOr<int> code = sidecar->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const std::string out = sidecar->process().Log();
  EXPECT_EQ(Occurrences(out, kLeave), 1) << "the shutdown sent a LeaveGroup";
  EXPECT_THAT(out, ::testing::HasSubstr("[statics] closed its membership for the shutdown"));
}

}  // namespace
}  // namespace kafka_sidecar::testing
