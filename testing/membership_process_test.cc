// Several sidecars (real processes) in one consumer group against the embedded cluster: they
// split the partitions, a sidecar whose app stops consuming hands its partitions over, and a
// member joining while records are in flight moves partitions without losing or repeating
// acked records and without breaking per-key order.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "broker/embedded_cluster.h"
#include "testing/consuming_app.h"
#include "testing/group_log.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

constexpr int kPartitions = 6;
constexpr absl::Duration kSessionTimeout = absl::Seconds(4);

// librdkafka 2.0.2's mock coordinator ends a rebalance round only when its timer fires,
// session.timeout.ms minus 1 s after the round began (3 s for a group's first round), with
// whoever has rejoined by then. Cooperative-sticky takes two rounds to give a newcomer anything
// (the first only takes partitions away), and each round a member misses (not yet rejoined, or
// its SyncGroup answered after the leader's) costs another. So gates on the group are sized in
// rounds, each with room for a loaded machine, plus rounds that members may miss. They are
// hang guards, not expectations: each returns as soon as the group is there.
constexpr absl::Duration kRoundMargin = absl::Seconds(5);
constexpr int kMissedRounds = 3;
absl::Duration Round() { return kSessionTimeout + kRoundMargin; }
absl::Duration Rounds(int needed) { return (needed + kMissedRounds) * Round(); }
// Records of one step delivered, once the group is settled.
constexpr absl::Duration kDelivery = absl::Seconds(60);
// The apps' streams outlive any test here (the gates above bound them).
constexpr absl::Duration kStreamDeadline = absl::Minutes(10);

// The sidecars' librdkafka settings for these tests; `debug` names librdkafka's debug contexts,
// whose output goes to the sidecar's log (cgrp: what the group coordinator told the member).
std::string TestKafkaConfig(const std::string& debug = "cgrp") {
  return absl::StrCat(
      "--kafka_config=session.timeout.ms=", absl::ToInt64Milliseconds(kSessionTimeout),
      ",heartbeat.interval.ms=500,fetch.wait.max.ms=10,debug=", debug);
}
// Only the commits on revoke and on leaving count in these tests.
constexpr char kNoPeriodicCommits[] = "--commit_interval_ms=600000";

using Position = std::pair<int32_t, int64_t>;

std::unique_ptr<SidecarProcess> StartSidecar(const broker::EmbeddedCluster& cluster,
                                             const std::string& name,
                                             std::vector<std::string> flags = {}) {
  // The test settings come first: a later --kafka_config replaces them.
  flags.insert(flags.begin(), {TestKafkaConfig(), kNoPeriodicCommits});
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      SidecarProcess::Start(cluster.bootstrap_servers(), flags, name);
  EXPECT_TRUE(sidecar.ok()) << sidecar.status();
  return sidecar.ok() ? *std::move(sidecar) : nullptr;
}

// One pod: a sidecar process and its app's Consume stream.
struct Pod {
  std::string name;
  std::unique_ptr<SidecarProcess> sidecar;
  std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> stub;
  std::unique_ptr<ConsumingApp> app;  // destroyed first
};

// Starts a pod's sidecar; null on failure.
std::unique_ptr<Pod> StartPodSidecar(const broker::EmbeddedCluster& cluster,
                                     const std::string& name, std::vector<std::string> flags) {
  auto pod = std::make_unique<Pod>();
  pod->name = name;
  pod->sidecar = StartSidecar(cluster, name, std::move(flags));
  if (pod->sidecar == nullptr) return nullptr;
  pod->stub = pod->sidecar->NewStub();
  return pod;
}

// Opens the pod's app stream, subscribed to `topic` for `group`; false on failure.
bool StartApp(Pod& pod, const std::string& group, const std::string& topic, uint32_t max_in_flight,
              DeliveryLog& log) {
  pod.app =
      std::make_unique<ConsumingApp>(pod.name, *pod.stub, group, std::vector<std::string>{topic},
                                     max_in_flight, log, kStreamDeadline);
  EXPECT_TRUE(pod.app->subscribed()) << pod.name;
  return pod.app->subscribed();
}

// Starts a pod whose app subscribes to `topic` for `group`, without waiting for the group;
// null on failure.
std::unique_ptr<Pod> StartPod(const broker::EmbeddedCluster& cluster, const std::string& name,
                              const std::string& group, const std::string& topic,
                              uint32_t max_in_flight, DeliveryLog& log,
                              std::vector<std::string> flags = {}) {
  std::unique_ptr<Pod> pod = StartPodSidecar(cluster, name, std::move(flags));
  return pod != nullptr && StartApp(*pod, group, topic, max_in_flight, log) ? std::move(pod)
                                                                            : nullptr;
}

// Starts a pod for each name, all in `group`: their sidecars first, then their apps' streams
// back to back, so that the members join the group's first round together. Empty on failure.
std::vector<std::unique_ptr<Pod>> StartPods(const broker::EmbeddedCluster& cluster,
                                            const std::vector<std::string>& names,
                                            const std::string& group, const std::string& topic,
                                            uint32_t max_in_flight, DeliveryLog& log,
                                            const std::vector<std::string>& flags = {}) {
  std::vector<std::unique_ptr<Pod>> pods;
  for (const std::string& name : names) {
    pods.push_back(StartPodSidecar(cluster, name, flags));
    if (pods.back() == nullptr) return {};
  }
  for (auto& pod : pods) {
    if (!StartApp(*pod, group, topic, max_in_flight, log)) return {};
  }
  return pods;
}

// GroupLog of each pod's sidecar, from the byte of its log in `since` (from the start when
// `since` has none).
std::string GroupLogs(const std::vector<Pod*>& pods, const std::vector<size_t>& since = {}) {
  constexpr size_t kMaxLines = 300;
  std::string out;
  for (size_t i = 0; i < pods.size(); ++i) {
    absl::StrAppend(
        &out, "--- ", pods[i]->name, "'s sidecar log on its group",
        i < since.size() ? " during the wait" : "", ":\n",
        GroupLog(pods[i]->sidecar->process().Log(), i < since.size() ? since[i] : 0, kMaxLines),
        "\n");
  }
  return out;
}

// Waits until the pods' memberships of `group` hold every partition of `topic` between them,
// each pod some and no partition two pods, as their sidecars' logs say. Fails with what each
// holds and what each log said meanwhile when `timeout` passes or a sidecar exits first.
::testing::AssertionResult WaitForGroup(const std::vector<Pod*>& pods, const std::string& group,
                                        const std::string& topic, absl::Duration timeout) {
  constexpr absl::Duration kCheckInterval = absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  std::vector<size_t> logged_before;
  for (Pod* pod : pods) logged_before.push_back(pod->sidecar->process().Log().size());
  while (true) {
    std::string held_by;
    std::map<int32_t, int> holders;
    bool each_holds_some = true;
    for (Pod* pod : pods) {
      const std::set<int32_t> held = HeldPartitions(pod->sidecar->process().Log(), group, topic);
      each_holds_some = each_holds_some && !held.empty();
      for (int32_t partition : held) ++holders[partition];
      absl::StrAppend(&held_by, " ", pod->name, ": {", absl::StrJoin(held, ","), "}");
    }
    const bool spread =
        holders.size() == static_cast<size_t>(kPartitions) &&
        std::all_of(holders.begin(), holders.end(), [](const auto& h) { return h.second == 1; });
    if (each_holds_some && spread) return ::testing::AssertionSuccess();
    std::string exited;
    for (Pod* pod : pods) {
      if (absl::StatusOr<int> code = pod->sidecar->process().Wait(absl::ZeroDuration());
          code.ok()) {
        absl::StrAppend(&exited, " ", pod->name, " exited with ", *code, ";");
      }
    }
    if (!exited.empty() || absl::Now() >= deadline) {
      return ::testing::AssertionFailure()
             << "group " << group << " did not spread " << topic << " over its " << pods.size()
             << " members within " << absl::FormatDuration(absl::Now() - start) << " ("
             << absl::FormatDuration(timeout) << " allowed, rounds of "
             << absl::FormatDuration(Round()) << "):" << exited << held_by << "\n"
             << GroupLogs(pods, logged_before);
    }
    // Re-reads the logs every check interval, or as soon as a sidecar exits.
    const absl::Duration left = deadline - absl::Now();
    (void)pods.front()->sidecar->process().Wait(
        std::clamp(left, absl::ZeroDuration(), kCheckInterval));
  }
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
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  const std::vector<std::string> flags = {
      absl::StrCat("--unsubscribe_linger_ms=", absl::ToInt64Milliseconds(kLinger)),
      absl::StrCat("--assignment_strategy=", GetParam())};
  // Records are produced once both are members, so no rebalance happens while they flow. Both
  // join together: one round when they make the first; three (cooperative-sticky) when not.
  DeliveryLog log;
  std::vector<std::unique_ptr<Pod>> pods =
      StartPods(**cluster, {"a", "b"}, "pods", "split", 100, log, flags);
  ASSERT_EQ(pods.size(), 2u);
  Pod& a = *pods[0];
  Pod& b = *pods[1];
  ASSERT_TRUE(WaitForGroup({&a, &b}, "pods", "split", Rounds(3)));
  ASSERT_TRUE(ProduceDirect(bootstrap, "split", kRecords, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(kRecords), kDelivery))
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
  // every partition (one round: no one holds a's) and goes on from the group's commits.
  EXPECT_TRUE(a.app->Finish().ok());
  const absl::Time a_ended = absl::Now();
  ASSERT_TRUE(ProduceDirect(bootstrap, "split", kRecords, 20).ok());
  ASSERT_TRUE(WaitForGroup({&b}, "pods", "split", kLinger + Rounds(1)));
  // b resumed every partition at the offset the group had committed for it (b commits nothing
  // more: no periodic commits, no rebalance until the end).
  absl::StatusOr<std::vector<int64_t>> committed =
      CommittedOffsets(bootstrap, "pods", "split", kPartitions);
  ASSERT_TRUE(committed.ok()) << committed.status();
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(2 * kRecords), kDelivery))
      << DistinctRecords(log.Snapshot()) << " of " << 2 * kRecords;
  std::vector<Delivery> all = log.Snapshot();
  // a committed on leaving every record its app acked (all it received before ending, bar
  // any that arrived after it half-closed).
  for (const Delivery& d : first) {
    if (d.app == "a" && d.acked != absl::InfiniteFuture()) {
      EXPECT_GT((*committed)[d.partition], d.offset)
          << "a acked " << d.partition << "/" << d.offset << " and did not commit it on leaving";
    }
  }
  if (GetParam() != "range") {
    EXPECT_EQ(all.size(), static_cast<size_t>(2 * kRecords))
        << "records acked on a were delivered again by b";
  } else {
    // With an eager strategy b gives up its own partitions too, commits them first and gets
    // them back. The mock coordinator refuses commits while the group rebalances
    // (REBALANCE_IN_PROGRESS, which b logs; Kafka takes them until the group completes the
    // rebalance), so b may see its own acked records again. Nothing else repeats: a repeat
    // is at or past where the group's commits put its partition, never a record a acked
    // (committed on leaving), and a record b acked before the rebalance only when b's commit
    // on revoke was refused.
    const bool b_commit_refused =
        absl::StrContains(b.sidecar->process().Log(), "[pods] commit on revoke: ");
    std::vector<Delivery> by_time = all;
    std::stable_sort(by_time.begin(), by_time.end(),
                     [](const Delivery& x, const Delivery& y) { return x.received < y.received; });
    std::map<Position, Delivery> first_delivery;
    size_t repeats = 0;
    std::set<int32_t> repeated_partitions;
    for (const Delivery& d : by_time) {
      auto [it, fresh] = first_delivery.try_emplace({d.partition, d.offset}, d);
      if (fresh) continue;
      ++repeats;
      repeated_partitions.insert(d.partition);
      const Delivery& earlier = it->second;
      EXPECT_GE(d.offset, (*committed)[d.partition])
          << d.partition << "/" << d.offset << " came again below the committed offset "
          << (*committed)[d.partition];
      // The rebalance comes after a's linger: what was acked before a ended was acked first.
      const bool acked_before_the_move = earlier.acked < a_ended;
      EXPECT_TRUE(!acked_before_the_move || (earlier.app == "b" && b_commit_refused))
          << d.partition << "/" << d.offset << " was acked on " << earlier.app
          << " before the rebalance and delivered again"
          << (earlier.app == "b" ? " (b's commit on revoke was not refused)" : "");
    }
    std::cout << repeats << " records repeated after the eager rebalance, in partitions {"
              << absl::StrJoin(repeated_partitions, ",") << "} (b held {"
              << absl::StrJoin(of_b, ",") << "}); b's commit on revoke "
              << (b_commit_refused ? "was" : "was not") << " refused\n";
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
// acked; and the first deliveries of a key's records come in offset order. A redelivery may
// start at an acked record only on the apps in `acks_may_repeat`: those whose sidecar could not
// commit its acks before a partition went (a commit on revoke refused, or the partition lost).
void ExpectPerKeyOrder(const std::vector<Delivery>& deliveries,
                       const std::set<std::string>& acks_may_repeat) {
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
      const bool redelivery = first_ack[Position{d.partition, d.offset}] > d.received ||
                              acks_may_repeat.count(d.app) > 0;
      EXPECT_TRUE(d.offset > app_key->second || redelivery)
          << d.app << " got key " << d.key << " at " << d.offset << " after " << app_key->second
          << ", and not as a redelivery of an unacked record";
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
  std::vector<std::unique_ptr<Pod>> pods =
      StartPods(**cluster, {"a", "b"}, "movers", "moves", 1000, log, flags);
  ASSERT_EQ(pods.size(), 2u);
  Pod& a = *pods[0];
  Pod& b = *pods[1];
  ASSERT_TRUE(WaitForGroup({&a, &b}, "movers", "moves", Rounds(3)));

  // The first records are delivered, acked and committed. Then both apps stop acking and the
  // next records wait in flight on every partition.
  ASSERT_TRUE(ProduceDirect(bootstrap, "moves", kBatch, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(kBatch), kDelivery));
  int64_t committed = 0;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);
       committed < kBatch && absl::Now() < deadline;) {
    absl::StatusOr<std::vector<int64_t>> offsets =
        CommittedOffsets(bootstrap, "movers", "moves", kPartitions);
    committed = 0;
    for (int64_t offset : offsets.ok() ? *offsets : std::vector<int64_t>()) {
      committed += std::max<int64_t>(offset, 0);
    }
    // The next periodic commit is up to 500 ms away; a sidecar that exits ends the wait.
    if (committed < kBatch && a.sidecar->process().Wait(absl::Milliseconds(100)).ok()) break;
  }
  ASSERT_EQ(committed, kBatch);
  a.app->Hold();
  b.app->Hold();
  ASSERT_TRUE(ProduceDirect(bootstrap, "moves", kBatch, 20).ok());
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(2 * kBatch), kDelivery));

  // A third member joins: some partitions move to it with records in flight on a and b. With
  // cooperative-sticky that takes two rounds: the first takes them from a and b, the second
  // gives them to c.
  const absl::Time joined = absl::Now();
  auto c = StartPod(**cluster, "c", "movers", "moves", 1000, log, flags);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(WaitForGroup({&a, &b, c.get()}, "movers", "moves", Rounds(2)));
  ASSERT_TRUE(log.WaitUntil(
      [](const std::vector<Delivery>& d) { return !PartitionsOf(d, "c").empty(); }, kDelivery))
      << "c holds partitions and delivered nothing of them\n"
      << GroupLogs({c.get()});
  // Acks for moved partitions are stale now; the rest count. More records follow the move.
  a.app->Release();
  b.app->Release();
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
  // In flight on a or b in a partition that had moved to c when they acked it: delivered by c
  // (the ack was stale). A partition moved when c first delivered a record of it. One that a or
  // b delivered from again after that moved more than once (a loaded machine may miss a
  // session timeout), and one that moved only after a or b acked its records (then their acks
  // count and c starts past them) say nothing here.
  std::set<Position> from_c;
  std::map<int32_t, absl::Time> moved_at;
  for (const Delivery& d : all) {
    if (d.app != "c") continue;
    from_c.insert({d.partition, d.offset});
    auto [at, first] = moved_at.try_emplace(d.partition, d.received);
    if (!first) at->second = std::min(at->second, d.received);
  }
  std::set<int32_t> moved_back;
  for (const Delivery& d : all) {
    auto at = moved_at.find(d.partition);
    if (d.app != "c" && at != moved_at.end() && d.received > at->second) {
      moved_back.insert(d.partition);
    }
  }
  size_t moved_in_flight = 0;
  for (const Delivery& d : all) {
    auto at = moved_at.find(d.partition);
    if (d.app != "c" && d.received < joined && at != moved_at.end() && d.acked >= at->second &&
        moved_back.count(d.partition) == 0) {
      ++moved_in_flight;
      EXPECT_EQ(from_c.count({d.partition, d.offset}), 1u)
          << d.partition << "/" << d.offset << " was in flight on " << d.app
          << " when its partition moved, and c never delivered it";
    }
  }
  EXPECT_GT(moved_in_flight, 0u) << "no record was in flight in a partition that moved";
  // The mock coordinator may refuse a commit on revoke while the group rebalances
  // (REBALANCE_IN_PROGRESS; Kafka takes it), and a loaded machine may miss a session timeout:
  // then the member's acks since its last periodic commit come again, as Kafka's at-least-once
  // allows. The sidecar logs both.
  std::set<std::string> acks_may_repeat;
  for (const Pod* pod : {&a, &b, c.get()}) {
    const std::string sidecar_log = pod->sidecar->process().Log();
    if (absl::StrContains(sidecar_log, "[movers] commit on revoke: ") ||
        absl::StrContains(sidecar_log, "[movers] lost ")) {
      acks_may_repeat.insert(pod->name);
    }
  }
  const bool failed_before = ::testing::Test::HasFailure();
  ExpectPerKeyOrder(all, acks_may_repeat);
  if (!failed_before && ::testing::Test::HasFailure()) {
    ADD_FAILURE() << "per-key order broken; what the group did:\n" << GroupLogs({&a, &b, c.get()});
  }
  std::cout << moved.size() << " partitions moved to c with " << moved_in_flight
            << " records in flight; " << all.size() - 3 * kBatch
            << " deliveries repeated; acks may repeat on {" << absl::StrJoin(acks_may_repeat, ",")
            << "}\n";
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
      {"--group_instance_id=pod-a", "--unsubscribe_linger_ms=200", TestKafkaConfig("protocol")});
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  constexpr char kLeave[] = "Sent LeaveGroupRequest";
  {
    DeliveryLog log;
    ConsumingApp app("app", *stub, "statics", {"static"}, 100, log);
    ASSERT_TRUE(app.subscribed());
    // Alone in the group: its first round, then 600 records.
    ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(600), Rounds(1)));
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
  ASSERT_TRUE(log.WaitUntil(AtLeastDistinct(600), Rounds(1)));
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
