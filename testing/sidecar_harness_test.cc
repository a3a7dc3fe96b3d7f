#include "testing/sidecar_harness.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "testing/consume_client.h"
#include "testing/kafka_test_client.h"

namespace kafka_sidecar::testing {
namespace {

// Tests that rely on Options::kafka_settings count on them reaching every librdkafka client
// of the sidecar, the consumers as well as the producer.
TEST(SidecarHarnessTest, KafkaSettingsReachTheConsumers) {
  SidecarHarness::Options options;
  // The sidecar's own default is earliest: a consumer with it would start at offset 0.
  options.kafka_settings = {{"auto.offset.reset", "latest"}};
  absl::StatusOr<std::unique_ptr<SidecarHarness>> harness =
      SidecarHarness::Start(std::move(options));
  ASSERT_TRUE(harness.ok()) << harness.status();
  ASSERT_TRUE((*harness)->cluster().CreateTopic("settled", 1).ok());
  constexpr int kOld = 5;
  ASSERT_TRUE(ProduceDirect((*harness)->bootstrap(), "settled", kOld, 10).ok());

  ConsumeClient client((*harness)->stub(), absl::Seconds(60));
  ASSERT_TRUE(client.Subscribe("newcomers", {"settled"}));
  // Where "latest" lands depends on when the assignment comes: keep producing until a record
  // arrives, one every 100 ms, for at most 30 s.
  absl::Notification arrived;
  std::thread producer([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!arrived.WaitForNotificationWithTimeout(absl::Milliseconds(100)) &&
           absl::Now() < deadline) {
      ASSERT_TRUE(ProduceDirect((*harness)->bootstrap(), "settled", 1, 10).ok());
    }
  });
  std::optional<kafka_sidecar::v1::RecordBatch> batch = client.Next();
  arrived.Notify();
  producer.join();
  ASSERT_TRUE(batch.has_value() && batch->records_size() > 0) << client.AwaitEnd().error_message();
  EXPECT_GE(batch->records(0).offset(), kOld)
      << "the consumer started at the beginning: it did not get auto.offset.reset=latest";
  client.Cancel();
}

}  // namespace
}  // namespace kafka_sidecar::testing
