// Poison records against Apache Kafka itself: a record nacked on every delivery backs off 300
// then 600 ms, lands in the dead-letter topic with its dlq.* headers (written by the sidecar's
// idempotent acks=all producer) while the other keys flow, and the group commits past it only
// once it is there. The same scenario as the mock suite's testing/dead_letter_test.

#include <gtest/gtest.h>

#include "testing/dead_letter_scenario.h"
#include "testing/kafka/shared_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);

TEST(RealKafkaDeadLetterTest, NackedRecordBacksOffThenGoesToTheDeadLetterTopicWhileOtherKeysFlow) {
  DeadLetterSetup setup;
  setup.bootstrap = SharedKafka::Get().bootstrap();
  ASSERT_TRUE(CreateTopic(setup.bootstrap, setup.topic, setup.partitions, 1).ok());
  ASSERT_TRUE(CreateTopic(setup.bootstrap, setup.dead_letter_topic, 1, 1).ok());
  absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
      setup.bootstrap, {"--kafka_config=fetch.wait.max.ms=10", "--commit_interval_ms=200"},
      "dead-letters");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  ExpectBackoffThenDeadLetter(setup, **sidecar);
}

}  // namespace
}  // namespace kafka_sidecar::testing
