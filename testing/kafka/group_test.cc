// Consumer groups on Apache Kafka itself, with real sidecar processes: two sidecars and a plain
// librdkafka consumer share a group's partitions, a sidecar whose app stops consuming leaves and
// its partitions move without an acked record coming again; a statically named sidecar that is
// killed and restarted within the session timeout gets its partitions back and the other
// members see no rebalance (the mock cluster ignores group.instance.id).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "testing/consuming_app.h"
#include "testing/group_log.h"
#include "testing/kafka/shared_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

constexpr int kPartitions = 6;
// Kafka itself finishes a rebalance as soon as every member has rejoined; these bound the
// waits on a loaded machine, they are not expectations.
constexpr absl::Duration kGroupTimeout = absl::Seconds(60);
constexpr absl::Duration kDelivery = absl::Seconds(60);

const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);
std::string Bootstrap() { return SharedKafka::Get().bootstrap(); }

std::unique_ptr<SidecarProcess> StartSidecar(const std::string& name,
                                             std::vector<std::string> flags = {}) {
  // A later --kafka_config replaces this one.
  flags.insert(flags.begin(),
               "--kafka_config=session.timeout.ms=10000,heartbeat.interval.ms=500,"
               "fetch.wait.max.ms=10,debug=cgrp");
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar =
      SidecarProcess::Start(Bootstrap(), flags, name);
  EXPECT_TRUE(sidecar.ok()) << sidecar.status();
  return sidecar.ok() ? *std::move(sidecar) : nullptr;
}

// A plain librdkafka member (cooperative-sticky, as the sidecars) served on a thread of its
// own, as an app's poll loop would: it takes part in every rebalance, consumes nothing and
// commits nothing.
class PlainMember {
 public:
  explicit PlainMember(const std::string& group, const std::string& topic) {
    absl::StatusOr<std::unique_ptr<GroupMember>> member =
        GroupMember::Join(Bootstrap(), group, topic, {{"session.timeout.ms", "10000"}});
    EXPECT_TRUE(member.ok()) << member.status();
    if (!member.ok()) return;
    member_ = *std::move(member);
    thread_ = std::thread([this] {
      while (true) {
        {
          absl::MutexLock lock(&mu_);
          if (stop_) break;
        }
        // Polls for 100 ms (no member holds this many partitions), then publishes.
        std::vector<int32_t> held = member_->WaitForAssignment(1000, absl::Milliseconds(100));
        absl::MutexLock lock(&mu_);
        held_ = std::set<int32_t>(held.begin(), held.end());
      }
      member_->Close();
      absl::MutexLock lock(&mu_);
      held_.clear();
    });
  }
  ~PlainMember() { Leave(); }

  bool joined() const { return member_ != nullptr; }
  std::set<int32_t> held() {
    absl::MutexLock lock(&mu_);
    return held_;
  }
  int rebalances() const { return member_->rebalances(); }
  absl::Time last_rebalance() const { return member_->last_rebalance(); }
  // Leaves the group and waits until it has.
  void Leave() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::unique_ptr<GroupMember> member_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int32_t> held_ ABSL_GUARDED_BY(mu_);
};

// Who holds which partition of `topic` in `group`: each sidecar by its log, the plain member
// by its assignment. True once every partition is held by exactly one of them and each holds
// some.
struct Holders {
  std::map<std::string, std::set<int32_t>> held;
  bool Spread() const {
    std::map<int32_t, int> count;
    for (const auto& [name, partitions] : held) {
      if (partitions.empty()) return false;
      for (int32_t p : partitions) ++count[p];
    }
    return count.size() == static_cast<size_t>(kPartitions) &&
           std::all_of(count.begin(), count.end(), [](const auto& c) { return c.second == 1; });
  }
  std::string ToString() const {
    std::string out;
    for (const auto& [name, partitions] : held) {
      absl::StrAppend(&out, " ", name, ": {", absl::StrJoin(partitions, ","), "}");
    }
    return out;
  }
};

Holders HoldersNow(const std::map<std::string, SidecarProcess*>& sidecars, PlainMember* plain,
                   const std::string& group, const std::string& topic) {
  Holders holders;
  for (const auto& [name, sidecar] : sidecars) {
    holders.held[name] = HeldPartitions(sidecar->process().Log(), group, topic);
  }
  if (plain != nullptr) holders.held["plain"] = plain->held();
  return holders;
}

::testing::AssertionResult WaitForSpread(const std::map<std::string, SidecarProcess*>& sidecars,
                                         PlainMember* plain, const std::string& group,
                                         const std::string& topic) {
  Holders last;
  if (WaitUntil(
          [&] {
            last = HoldersNow(sidecars, plain, group, topic);
            return last.Spread();
          },
          kGroupTimeout, absl::Milliseconds(50))) {
    return ::testing::AssertionSuccess();
  }
  std::string logs;
  for (const auto& [name, sidecar] : sidecars) {
    absl::StrAppend(&logs, "--- ", name, ":\n", GroupLog(sidecar->process().Log(), 0, 80), "\n");
  }
  return ::testing::AssertionFailure() << "the group did not spread " << topic << " within "
                                       << kGroupTimeout << ":" << last.ToString() << "\n"
                                       << logs;
}

TEST(RealKafkaGroupTest, TwoSidecarsAndAPlainConsumerShareTheGroupAndALeaverHandsOver) {
  constexpr int kRecords = 3000;
  ASSERT_TRUE(CreateTopic(Bootstrap(), "shared", kPartitions, 1).ok());
  ASSERT_TRUE(ProduceDirect(Bootstrap(), "shared", kRecords, 20).ok());
  // Only the commits made when partitions leave a member count.
  const std::vector<std::string> flags = {"--unsubscribe_linger_ms=500",
                                          "--commit_interval_ms=600000"};
  auto a = StartSidecar("a", flags);
  auto b = StartSidecar("b", flags);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto a_stub = a->NewStub();
  auto b_stub = b->NewStub();

  PlainMember plain("mixed", "shared");
  ASSERT_TRUE(plain.joined());
  ASSERT_TRUE(WaitUntil([&] { return plain.held().size() == kPartitions; }, kGroupTimeout));

  // The partitions split three ways.
  DeliveryLog log;
  auto app_a = std::make_unique<ConsumingApp>("a", *a_stub, "mixed",
                                              std::vector<std::string>{"shared"}, 100, log);
  ConsumingApp app_b("b", *b_stub, "mixed", {"shared"}, 100, log);
  ASSERT_TRUE(app_a->subscribed());
  ASSERT_TRUE(app_b.subscribed());
  const absl::Time joined = absl::Now();
  ASSERT_TRUE(WaitForSpread({{"a", a.get()}, {"b", b.get()}}, &plain, "mixed", "shared"));
  std::cout << "three members shared the partitions " << absl::Now() - joined
            << " after the sidecars' streams subscribed:"
            << HoldersNow({{"a", a.get()}, {"b", b.get()}}, &plain, "mixed", "shared").ToString()
            << "\n";
  const std::set<int32_t> of_a = HeldPartitions(a->process().Log(), "mixed", "shared");
  const std::set<int32_t> of_plain = plain.held();
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(Bootstrap(), "shared", kPartitions);
  ASSERT_TRUE(ends.ok()) << ends.status();
  size_t on_sidecars = 0;
  for (int p = 0; p < kPartitions; ++p) on_sidecars += of_plain.count(p) ? 0 : (*ends)[p];
  ASSERT_TRUE(log.WaitUntil(
      [&](const std::vector<Delivery>& d) { return DistinctRecords(d) >= on_sidecars; },
      kDelivery))
      << DistinctRecords(log.Snapshot()) << " of " << on_sidecars;

  // a's app stops consuming: a commits what its app acked, leaves after the linger, and its
  // partitions move to the others.
  EXPECT_TRUE(app_a->Finish().ok());
  const absl::Time a_ended = absl::Now();
  ASSERT_TRUE(WaitForSpread({{"b", b.get()}}, &plain, "mixed", "shared"));
  std::cout << "a's partitions {" << absl::StrJoin(of_a, ",") << "} moved "
            << absl::Now() - a_ended << " after its app's stream ended (linger 500ms)\n";

  // The plain consumer leaves too (it never consumed): b owns everything and delivers the rest.
  plain.Leave();
  ASSERT_TRUE(WaitForSpread({{"b", b.get()}}, nullptr, "mixed", "shared"));
  ASSERT_TRUE(log.WaitUntil(
      [&](const std::vector<Delivery>& d) { return DistinctRecords(d) >= kRecords; }, kDelivery))
      << DistinctRecords(log.Snapshot()) << " of " << kRecords;

  // Every record at least once; one that came again had not been acked where it came first.
  std::vector<Delivery> all = log.Snapshot();
  std::stable_sort(all.begin(), all.end(),
                   [](const Delivery& x, const Delivery& y) { return x.received < y.received; });
  std::map<std::pair<int32_t, int64_t>, Delivery> first;
  int repeats = 0;
  for (const Delivery& d : all) {
    auto [it, fresh] = first.try_emplace({d.partition, d.offset}, d);
    if (fresh) continue;
    ++repeats;
    EXPECT_GT(it->second.acked, d.received)
        << d.partition << "/" << d.offset << " was acked on " << it->second.app
        << " and delivered again on " << d.app;
  }
  EXPECT_EQ(first.size(), static_cast<size_t>(kRecords));
  std::cout << repeats << " records came again, none of them acked before\n";
}

TEST(RealKafkaGroupTest, AStaticMemberRestartedWithinTheSessionTimeoutKeepsItsPartitions) {
  ASSERT_TRUE(CreateTopic(Bootstrap(), "static", kPartitions, 1).ok());
  const std::vector<std::string> flags = {"--group_instance_id=pod-0"};
  auto sidecar = StartSidecar("static-1", flags);
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  PlainMember plain("statics", "static");
  ASSERT_TRUE(plain.joined());
  ASSERT_TRUE(WaitUntil([&] { return plain.held().size() == kPartitions; }, kGroupTimeout));
  DeliveryLog log;
  auto app = std::make_unique<ConsumingApp>("app", *stub, "statics",
                                            std::vector<std::string>{"static"}, 100, log);
  ASSERT_TRUE(app->subscribed());
  ASSERT_TRUE(WaitForSpread({{"sidecar", sidecar.get()}}, &plain, "statics", "static"));
  const std::set<int32_t> held = HeldPartitions(sidecar->process().Log(), "statics", "static");
  const std::set<int32_t> plain_held = plain.held();
  const int plain_rebalances = plain.rebalances();

  // Killed: no LeaveGroup. A new process with the same instance id comes back within the
  // session timeout (10 s) and its app subscribes again.
  sidecar->process().Signal(SIGKILL);
  ASSERT_TRUE(sidecar->process().Wait(absl::Seconds(10)).ok());
  const absl::Time killed = absl::Now();
  app.reset();
  auto restarted = StartSidecar("static-2", flags);
  ASSERT_NE(restarted, nullptr);
  auto restarted_stub = restarted->NewStub();
  ConsumingApp again("app", *restarted_stub, "statics", {"static"}, 100, log);
  ASSERT_TRUE(again.subscribed());
  ASSERT_TRUE(WaitUntil(
      [&] { return HeldPartitions(restarted->process().Log(), "statics", "static") == held; },
      kGroupTimeout))
      << "held {" << absl::StrJoin(held, ",") << "} before, now {"
      << absl::StrJoin(HeldPartitions(restarted->process().Log(), "statics", "static"), ",")
      << "}\n"
      << GroupLog(restarted->process().Log(), 0, 80);
  const absl::Duration back = absl::Now() - killed;
  ASSERT_LT(back, absl::Seconds(10)) << "not back within the session timeout: not a fair test";

  // Records produced now reach the restarted sidecar's app on its partitions; the plain member
  // kept its partitions and was never told of a rebalance.
  ASSERT_TRUE(ProduceDirect(Bootstrap(), "static", 600, 20).ok());
  absl::StatusOr<std::vector<int64_t>> ends = EndOffsets(Bootstrap(), "static", kPartitions);
  ASSERT_TRUE(ends.ok());
  size_t on_sidecar = 0;
  for (int32_t p : held) on_sidecar += (*ends)[p];
  ASSERT_TRUE(log.WaitUntil(
      [&](const std::vector<Delivery>& d) { return DistinctRecords(d) >= on_sidecar; },
      kDelivery));
  EXPECT_EQ(plain.held(), plain_held);
  // Since the kill, not since the snapshot: the plain member may still be taking its (empty)
  // assignment of the group's last round of forming when the snapshot is taken.
  const absl::Time last = plain.last_rebalance();
  EXPECT_LT(last, killed) << "the other member saw a rebalance " << last - killed
                          << " after the kill";
  std::cout << "the restarted static member held {" << absl::StrJoin(held, ",") << "} again "
            << back << " after the kill; the other member's last rebalance came "
            << killed - last << " before the kill (" << plain.rebalances() - plain_rebalances
            << " since the snapshot)\n";
}

}  // namespace
}  // namespace kafka_sidecar::testing
