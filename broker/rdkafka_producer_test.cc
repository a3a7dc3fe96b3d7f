// RdKafkaProducer against the embedded (mock) cluster: what Drain promises when records keep
// arriving while it runs (a produce stream in the middle of a batch when shutdown begins).

#include "broker/rdkafka_producer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "broker/embedded_cluster.h"

namespace kafka_sidecar::broker {
namespace {

// Every record handed over gets its report by the time Drain returns, or at once if it comes
// later. A record that reached librdkafka's queue after Drain's flush would otherwise wait for
// message.timeout.ms (300 s here) with its stream, and the shutdown, waiting for it.
TEST(RdKafkaProducerTest, RecordsHandedOverWhileDrainRunsAreAnsweredByItsEnd) {
  absl::StatusOr<std::unique_ptr<EmbeddedCluster>> cluster = EmbeddedCluster::Create(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("draining", 1).ok());
  absl::StatusOr<std::unique_ptr<RdKafkaProducer>> producer = RdKafkaProducer::Create(
      {(*cluster)->bootstrap_servers(), {{"message.timeout.ms", "300000"}}});
  ASSERT_TRUE(producer.ok()) << producer.status();
  (*cluster)->SetBrokerDown(1);  // nothing is acknowledged: only Drain answers the records

  constexpr int kMostRecords = 50000;
  std::atomic<int> handed_over{0};
  std::atomic<int> answered{0};
  std::atomic<int> refused_at_once{0};
  std::atomic<bool> draining{false};
  std::thread app([&] {
    // Hands records over until one is refused at once: from then on the producer is closed.
    const std::thread::id self = std::this_thread::get_id();
    while (handed_over.load() < kMostRecords) {
      auto at_once = std::make_shared<std::atomic<bool>>(false);
      (*producer)->Produce({"draining", std::nullopt, "v", {}, 0},
                           [&answered, at_once, self](const DeliveryReport& report) {
                             EXPECT_EQ(report.status.code(), absl::StatusCode::kUnavailable)
                                 << report.status;
                             if (std::this_thread::get_id() == self) at_once->store(true);
                             answered.fetch_add(1);
                           });
      handed_over.fetch_add(1);
      if (at_once->load() && draining.load()) {
        refused_at_once.fetch_add(1);
        break;
      }
    }
  });
  // Lets the app hand a few records over first.
  while (handed_over.load() < 100) std::this_thread::yield();
  draining.store(true);
  EXPECT_FALSE((*producer)->Drain(absl::ZeroDuration()).ok());
  app.join();

  EXPECT_EQ(refused_at_once.load(), 1) << "no record was refused once Drain had begun";
  // The app's records before the drain were failed by it, the last one at once: all answered.
  EXPECT_EQ(answered.load(), handed_over.load());
}

}  // namespace
}  // namespace kafka_sidecar::broker
