// Many local streams on one subscription, end to end: records spread over the app's streams
// by key with per-key order, and a silent stream is dropped (on an injected clock) with its
// records handed to the others.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_harness.h"
#include "testing/simulated_clock.h"
#include "testing/wait.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

std::unique_ptr<SidecarHarness> Start(SidecarHarness::Options options) {
  absl::StatusOr<std::unique_ptr<SidecarHarness>> harness =
      SidecarHarness::Start(std::move(options));
  EXPECT_TRUE(harness.ok()) << harness.status();
  return harness.ok() ? *std::move(harness) : nullptr;
}

TEST(ConsumeStreamsTest, FourStreamsShareOneSubscriptionWithPerKeyOrder) {
  auto harness = Start({});
  ASSERT_NE(harness, nullptr);
  constexpr int kRecords = 20000;
  ASSERT_TRUE(harness->cluster().CreateTopic("shared", 6).ok());
  ASSERT_TRUE(ProduceDirect(harness->bootstrap(), "shared", kRecords, 20).ok());

  constexpr int kStreams = 4;
  std::vector<std::unique_ptr<ConsumeClient>> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<ConsumeClient>(harness->stub(), absl::Seconds(120)));
    ASSERT_TRUE(clients.back()->Subscribe("workers", {"shared"}, 100));
  }
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> by_key;  // first deliveries, in arrival order
  std::set<std::pair<int32_t, int64_t>> seen;
  std::vector<int> share(kStreams, 0);
  std::atomic<int> total{0};
  int64_t redelivered_before_end = -1;
  std::vector<std::thread> apps;
  for (int i = 0; i < kStreams; ++i) {
    apps.emplace_back([&, i] {
      while (total < kRecords) {
        std::optional<kafka_sidecar::v1::RecordBatch> batch = clients[i]->Next();
        if (!batch.has_value()) return;
        std::vector<uint64_t> ids;
        {
          std::lock_guard<std::mutex> lock(mu);
          for (const Record& r : batch->records()) {
            ids.push_back(r.delivery_id());
            if (seen.insert({r.partition(), r.offset()}).second) {
              by_key[r.key()].push_back(r.offset());
              share[i]++;
              if (++total == kRecords) {
                // Cancelling hands the streams' unacked records around: count before it.
                redelivered_before_end = harness->consume_metrics().records_redelivered.load();
                for (auto& client : clients) client->Cancel();
              }
            }
          }
        }
        clients[i]->Ack(ids);
      }
    });
  }
  for (std::thread& app : apps) app.join();
  ASSERT_EQ(total.load(), kRecords);
  for (const auto& [key, offsets] : by_key) {
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end())) << "key " << key;
  }
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_GT(share[i], kRecords / kStreams / 2) << "stream " << i << " got too little";
  }
  EXPECT_EQ(redelivered_before_end, 0) << "no stream left, so nothing should come twice";
}

TEST(ConsumeStreamsTest, SilentStreamIsEndedAndItsRecordsGoToTheOthers) {
  SimulatedClock clock;
  SidecarHarness::Options options;
  options.clock = &clock;
  options.config.ordering = sidecar::Ordering::kPartition;  // one partition: one route, one stream
  options.config.client_inactivity_timeout = absl::Seconds(30);
  options.config.kafka_unavailable_timeout = absl::Hours(10);
  options.config.unsubscribe_linger = absl::Hours(1);
  auto harness = Start(std::move(options));
  ASSERT_NE(harness, nullptr);
  constexpr int kRecords = 50;
  ASSERT_TRUE(harness->cluster().CreateTopic("quiet", 1).ok());
  ASSERT_TRUE(ProduceDirect(harness->bootstrap(), "quiet", kRecords, 10, 0).ok());

  ConsumeClient silent(harness->stub(), absl::Seconds(60));
  ASSERT_TRUE(silent.Subscribe("team", {"quiet"}, 10));
  std::vector<Record> held = silent.Receive(10, /*ack=*/false);
  ASSERT_EQ(held.size(), 10u);
  ConsumeClient busy(harness->stub(), absl::Seconds(60));
  ASSERT_TRUE(busy.Subscribe("team", {"quiet"}, 100));

  clock.Advance(absl::Seconds(31));
  grpc::Status status = silent.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("inactive"));

  std::vector<Record> got = busy.Receive(kRecords, /*ack=*/true);
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(got[i].offset(), i);
    EXPECT_EQ(got[i].delivery_attempt(), i < 10 ? 2u : 1u) << i;
  }
  EXPECT_EQ(harness->consume_metrics().inactivity_drops.load(), 1);
}

TEST(ConsumeStreamsTest, AStreamDroppedForInactivityCountsAsGoneForTheLinger) {
  SimulatedClock clock;
  SidecarHarness::Options options;
  options.clock = &clock;
  options.config.client_inactivity_timeout = absl::Seconds(30);
  options.config.kafka_unavailable_timeout = absl::Hours(10);
  options.config.unsubscribe_linger = absl::Seconds(10);
  auto harness = Start(std::move(options));
  ASSERT_NE(harness, nullptr);
  ASSERT_TRUE(harness->cluster().CreateTopic("dropped", 1).ok());
  ASSERT_TRUE(ProduceDirect(harness->bootstrap(), "dropped", 20, 10, 0).ok());

  // The app's only stream holds records and goes silent: it is dropped, and the subscription
  // then has no active stream.
  ConsumeClient silent(harness->stub(), absl::Seconds(60));
  ASSERT_TRUE(silent.Subscribe("leavers", {"dropped"}, 10));
  std::set<int64_t> held;
  for (const Record& r : silent.Receive(10, /*ack=*/false)) held.insert(r.offset());
  ASSERT_EQ(held.size(), 10u);
  clock.Advance(absl::Seconds(31));
  EXPECT_EQ(silent.AwaitEnd().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const int64_t rebalances = harness->consume_metrics().rebalances.load();
  ASSERT_GE(rebalances, 1);

  // A stream back within the linger rides the same membership: no rebalance, the partition
  // still assigned, and the records the dropped stream held come again as second attempts (a
  // new membership would start their count afresh). The drop and the decision to leave are
  // made in one step of the subscription, so this stream arrives after either.
  {
    ConsumeClient back(harness->stub(), absl::Seconds(60));
    ASSERT_TRUE(back.Subscribe("leavers", {"dropped"}, 10));
    std::vector<Record> all = back.Receive(20, /*ack=*/true);
    ASSERT_EQ(all.size(), 20u);
    for (const Record& r : all) {
      EXPECT_EQ(r.delivery_attempt(), held.count(r.offset()) ? 2u : 1u) << "offset " << r.offset();
    }
    EXPECT_EQ(harness->consume_metrics().rebalances.load(), rebalances);
    EXPECT_EQ(harness->consume_metrics().subscriptions.load(), 1);
    size_t assigned = 0;
    for (const auto& stats : harness->server().subscriptions().Stats()) {
      assigned += stats.assigned_partitions;
    }
    EXPECT_EQ(assigned, 1u);
    back.Cancel();
    back.AwaitEnd();
  }
  // The linger starts when the sidecar has taken the stream off: only then may the clock move.
  ASSERT_TRUE(WaitUntil([&] { return harness->consume_metrics().streams.load() == 0; },
                        absl::Seconds(20)));
  EXPECT_EQ(harness->server().subscriptions().open_subscriptions(), 1u) << "left before the linger";

  // Past the linger the sidecar leaves the group.
  clock.Advance(absl::Seconds(11));
  EXPECT_TRUE(harness->server().subscriptions().AwaitIdle(absl::Seconds(20)));
  EXPECT_EQ(harness->consume_metrics().subscriptions.load(), 0);
}

}  // namespace
}  // namespace kafka_sidecar::testing
