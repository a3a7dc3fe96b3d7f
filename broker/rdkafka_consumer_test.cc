// RdKafkaConsumer against the embedded (mock) cluster, for what only librdkafka itself shows.

#include "broker/rdkafka_consumer.h"

#include <gtest/gtest.h>

#include <vector>

#include "absl/time/clock.h"
#include "broker/embedded_cluster.h"

namespace kafka_sidecar::broker {
namespace {

constexpr int kSyncGroup = 14;  // Kafka's API key

class CountingListener final : public RebalanceListener {
 public:
  void OnAssigned(const std::vector<TopicPartition>&) override { ++assigned; }
  void OnRevoked(const std::vector<TopicPartition>&, bool) override { ++revoked; }
  int assigned = 0;
  int revoked = 0;
};

// librdkafka 2.0.2 aborts the process destroying a cooperative-sticky member whose JoinGroup
// was answered and whose SyncGroup was not (librdkafka issue 4312): "Assertion
// `assignor_state' failed". A member closed in that window must survive being destroyed.
TEST(RdKafkaConsumerTest, AMemberLeavingBetweenJoinAndSyncIsDestroyedSafely) {
  absl::StatusOr<std::unique_ptr<EmbeddedCluster>> cluster = EmbeddedCluster::Create(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("joining", 2).ok());
  // The SyncGroup answer comes 4 s late: the window stays open that long.
  (*cluster)->DelayResponse(1, kSyncGroup, absl::Seconds(4));
  absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer = RdKafkaConsumer::Create(
      {(*cluster)->bootstrap_servers(), "joiners", 1000, 1024,
       {{"session.timeout.ms", "4000"}, {"heartbeat.interval.ms", "500"}}});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  CountingListener listener;
  ASSERT_TRUE((*consumer)->Subscribe({"joining"}, &listener).ok());

  // Serves the group until its JoinGroup is answered (the mock's first round takes about 3 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::vector<Message> records;
  while (!(*consumer)->BetweenJoinAndSync() && absl::Now() < deadline) {
    (void)(*consumer)->Poll(absl::Milliseconds(50), 100, records);
  }
  ASSERT_TRUE((*consumer)->BetweenJoinAndSync()) << "the JoinGroup was never answered";

  const absl::Time closing = absl::Now();
  (*consumer)->Close(absl::Seconds(20), GroupConsumer::Departure::kLeave);
  consumer->reset();  // with the window still open, librdkafka 2.0.2 aborts here
  // Close waited for the late SyncGroup and declined the assignment it brought.
  EXPECT_GT(absl::Now() - closing, absl::Seconds(1));
  EXPECT_EQ(listener.assigned, 0);
}

}  // namespace
}  // namespace kafka_sidecar::broker
