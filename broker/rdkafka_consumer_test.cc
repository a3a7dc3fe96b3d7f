// RdKafkaConsumer against the embedded (mock) cluster, for what only librdkafka itself shows.

#include "broker/rdkafka_consumer.h"

#include <gtest/gtest.h>

#include <librdkafka/rdkafka.h>

#include <string>
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

// Produces `count` records of 10 bytes to `topic`, spread over `partitions`, waiting for every
// delivery.
void ProduceRecords(const std::string& bootstrap, const std::string& topic, int partitions,
                    int count) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof(error)),
            RD_KAFKA_CONF_OK);
  // Small batches: a fetch takes whole batches.
  ASSERT_EQ(rd_kafka_conf_set(conf, "batch.num.messages", "100", error, sizeof(error)),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  ASSERT_NE(producer, nullptr) << error;
  const std::string value(10, 'v');
  for (int i = 0; i < count; ++i) {
    while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(i % partitions),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer, 10);
    }
  }
  EXPECT_EQ(rd_kafka_flush(producer, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);
}

// librdkafka 2.0.2 stops fetching once queued.min.messages records wait in the client, and
// looks again only a second later. A consumer whose caller has emptied the queue fetches
// again at once: here the queue is let fill to the limit and then emptied 20 times, which
// without the restart takes at least 20 s (one second each) and with it well under one.
TEST(RdKafkaConsumerTest, FetchingRestartsAsSoonAsTheCallerHasEmptiedAFullQueue) {
  absl::StatusOr<std::unique_ptr<EmbeddedCluster>> cluster = EmbeddedCluster::Create(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  constexpr int kPartitions = 4;
  ASSERT_TRUE((*cluster)->CreateTopic("backlog", kPartitions).ok());
  constexpr int kQueueLimit = 5000;
  constexpr int kRounds = 20;
  // Fetches are small, so a round takes little more than the limit: enough for every round.
  ProduceRecords((*cluster)->bootstrap_servers(), "backlog", kPartitions, 200000);
  absl::StatusOr<std::unique_ptr<RdKafkaConsumer>> consumer = RdKafkaConsumer::Create(
      {(*cluster)->bootstrap_servers(), "backlog-readers", kQueueLimit, 65536,
       {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"},
        {"fetch.wait.max.ms", "10"}, {"max.partition.fetch.bytes", "8192"},
        {"fetch.max.bytes", "32768"}, {"message.max.bytes", "32768"}}});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  CountingListener listener;
  ASSERT_TRUE((*consumer)->Subscribe({"backlog"}, &listener).ok());

  std::vector<Message> records;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Time first_full = absl::InfiniteFuture();
  int rounds = 0;
  while (rounds < kRounds && absl::Now() < deadline) {
    // Group events only, records left in the client, until it holds its limit.
    while ((*consumer)->Prefetched() < kQueueLimit && absl::Now() < deadline) {
      ASSERT_TRUE((*consumer)->Poll(absl::Milliseconds(10), 0, records).ok());
    }
    if (rounds == 0) first_full = absl::Now();
    // Then every record there is.
    while ((*consumer)->Prefetched() > 0) {
      ASSERT_TRUE((*consumer)->Poll(absl::ZeroDuration(), 100000, records).ok());
    }
    ++rounds;
  }
  ASSERT_EQ(rounds, kRounds) << "only " << rounds << " rounds within 20 s (" << records.size()
                             << " records): fetching waited for librdkafka's one-second look";
  EXPECT_LT(absl::Now() - first_full, absl::Seconds(kRounds / 2))
      << "fetching waited for librdkafka's one-second look after the queue was emptied";
  std::vector<int64_t> next(kPartitions, 0);
  for (const Message& m : records) {
    ASSERT_EQ(m.offset, next[m.tp.partition]++) << "a record was lost or repeated";
  }
  (*consumer)->Close(absl::Seconds(5), GroupConsumer::Departure::kLeave);
}

}  // namespace
}  // namespace kafka_sidecar::broker
