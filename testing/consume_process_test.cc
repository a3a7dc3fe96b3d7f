// Consume against the real sidecar binary: a SIGKILL mid-stream loses nothing and repeats only
// what was not yet committed; an app that acks nothing while a million records wait pauses the
// partitions and the sidecar's memory stays bounded.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "broker/embedded_cluster.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::Record;
using ::testing::HasSubstr;

constexpr char kTestKafkaConfig[] =
    "--kafka_config=session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10";

std::unique_ptr<broker::EmbeddedCluster> NewCluster() {
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(3);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

TEST(ConsumeProcessTest, SigkillMidStreamLosesNothingAndRepeatsOnlyUncommittedRecords) {
  constexpr int kPartitions = 6;
  constexpr int kRecords = 20000;
  constexpr int kCommitIntervalMs = 500;
  auto cluster = NewCluster();
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->CreateTopic("crash", kPartitions).ok());
  ASSERT_TRUE(ProduceDirect(cluster->bootstrap_servers(), "crash", kRecords, 50).ok());
  const std::vector<std::string> flags = {kTestKafkaConfig,
                                          absl::StrCat("--commit_interval_ms=", kCommitIntervalMs)};

  using Position = std::pair<int32_t, int64_t>;
  std::set<Position> acked;  // first run
  std::vector<int64_t> committed;  // what Kafka held for the group once the sidecar was dead
  {
    auto sidecar = SidecarProcess::Start(cluster->bootstrap_servers(), flags, "first");
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    auto stub = (*sidecar)->NewStub();
    ConsumeClient client(*stub, absl::Seconds(120));
    ASSERT_TRUE(client.Subscribe("survivors", {"crash"}, 200));
    auto consume = [&](size_t until) {
      while (acked.size() < until) {
        std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
        ASSERT_TRUE(batch.has_value());
        std::vector<uint64_t> ids;
        for (const Record& r : batch->records()) ids.push_back(r.delivery_id());
        ASSERT_TRUE(client.Ack(ids));
        for (const Record& r : batch->records()) acked.insert({r.partition(), r.offset()});
      }
    };
    consume(kRecords / 4);
    // Wait until Kafka holds a commit covering most of what was acked, so that the second run
    // has committed records to not repeat.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    int64_t committed_total = 0;
    while (committed_total < kRecords / 5 && absl::Now() < deadline) {
      auto committed =
          CommittedOffsets(cluster->bootstrap_servers(), "survivors", "crash", kPartitions);
      committed_total = 0;
      if (committed.ok()) {
        for (int64_t offset : *committed) committed_total += std::max<int64_t>(offset, 0);
      }
    }
    ASSERT_GE(committed_total, kRecords / 5);
    consume(kRecords / 2);
    (*sidecar)->process().Signal(SIGKILL);
    absl::StatusOr<int> code = (*sidecar)->process().Wait(absl::Seconds(10));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 128 + SIGKILL);
    client.Cancel();
    // The dead sidecar commits nothing more: this is where the group stands.
    absl::StatusOr<std::vector<int64_t>> read =
        CommittedOffsets(cluster->bootstrap_servers(), "survivors", "crash", kPartitions);
    ASSERT_TRUE(read.ok()) << read.status();
    committed = *read;
  }

  // A new sidecar in the same group goes on from the committed offsets.
  auto sidecar = SidecarProcess::Start(cluster->bootstrap_servers(), flags, "second");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto stub = (*sidecar)->NewStub();
  ConsumeClient client(*stub, absl::Seconds(120));
  ASSERT_TRUE(client.Subscribe("survivors", {"crash"}, 200));
  std::set<Position> all = acked;
  int repeated = 0;
  while (all.size() < kRecords) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value()) << "stream ended with " << all.size() << " of " << kRecords;
    std::vector<uint64_t> ids;
    for (const Record& r : batch->records()) {
      ids.push_back(r.delivery_id());
      const Position position{r.partition(), r.offset()};
      all.insert(position);
      // At least once: what was acked but not yet committed may come again, what was
      // committed may not.
      EXPECT_GE(r.offset(), committed[r.partition()])
          << "record " << r.partition() << "@" << r.offset() << " came again below the "
          << "committed offset " << committed[r.partition()];
      if (acked.count(position) > 0) ++repeated;
    }
    ASSERT_TRUE(client.Ack(ids));
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kRecords));
  std::cout << "[          ] after SIGKILL: " << repeated << " of " << acked.size()
            << " acked records delivered again\n";
}

TEST(ConsumeProcessTest, SilentAppPausesPartitionsAndMemoryStaysBounded) {
  if (kSanitized) GTEST_SKIP() << "resident memory means nothing under AddressSanitizer";
  // 1,000,000 records of 100 bytes over 48 partitions: about 2.5 MiB each, under the mock's
  // per-partition limit, so Kafka keeps them all.
  constexpr int kPartitions = 48;
  constexpr int kRecords = 1000000;
  // At the default flags: about 20 MiB idle, plus up to --max_buffered_records records waiting
  // in the sidecar (about 300 bytes each here), up to half as many prefetched by librdkafka
  // until the pause drops them, up to 4 MiB of fetch response per broker, and 1,000 in flight.
  // Measured 84-88 MiB.
  constexpr int64_t kBoundBytes = 128 << 20;
  auto cluster = NewCluster();
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->CreateTopic("backlog", kPartitions).ok());
  ASSERT_TRUE(ProduceDirect(cluster->bootstrap_servers(), "backlog", kRecords, 100).ok());

  auto sidecar = SidecarProcess::Start(cluster->bootstrap_servers(), {kTestKafkaConfig}, "silent");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const int64_t idle_rss = (*sidecar)->process().ResidentBytes();
  auto stub = (*sidecar)->NewStub();
  ConsumeClient client(*stub, absl::Seconds(120));
  ASSERT_TRUE(client.Subscribe("sleepy", {"backlog"}, 1000));
  // The app reads what it is sent and acks nothing.
  int received = 0;
  while (received < 1000) {
    std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
    ASSERT_TRUE(batch.has_value());
    received += batch->records_size();
  }
  EXPECT_EQ(received, 1000) << "more than max_in_flight unacked records were sent";
  ASSERT_TRUE((*sidecar)->process().WaitForLog("paused", absl::Seconds(60)))
      << (*sidecar)->process().Log();
  EXPECT_THAT(HttpGet((*sidecar)->metrics_port(), "/metrics").second,
              HasSubstr("kafka_sidecar_in_flight_records{group=\"sleepy\",topics=\"backlog\"} "
                        "1000\n"));
  // With 999,000 records waiting, a record past the limit would come at once: none may come
  // while the memory is sampled below (an absence, so it is bounded by that wait).
  std::optional<kafka_sidecar::v1::RecordBatch> extra;
  absl::Notification extra_arrived;
  std::thread reader([&] {
    extra = client.Next();
    extra_arrived.Notify();
  });

  // Sample the resident memory while the sidecar holds the backlog back.
  int64_t peak = 0;
  for (int i = 0; i < 10; ++i) {
    peak = std::max(peak, (*sidecar)->process().ResidentBytes());
    // The sidecar must stay up: Wait returns DEADLINE_EXCEEDED after each sampling interval.
    ASSERT_FALSE((*sidecar)->process().Wait(absl::Milliseconds(300)).ok());
  }
  std::cout << "[          ] resident memory: idle " << (idle_rss >> 20) << " MiB, holding "
            << kRecords << " waiting records " << (peak >> 20) << " MiB (bound "
            << (kBoundBytes >> 20) << " MiB)\n";
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, kBoundBytes);
  EXPECT_FALSE(extra_arrived.HasBeenNotified()) << "a record past max_in_flight was sent";
  client.Cancel();  // ends the read
  reader.join();
  EXPECT_FALSE(extra.has_value() && extra->records_size() > 0)
      << "a record past max_in_flight was sent";
}

}  // namespace
}  // namespace kafka_sidecar::testing
