#include "sidecar/server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace kafka_sidecar::sidecar {
namespace {

using ::testing::HasSubstr;

SidecarConfig ValidConfig() {
  SidecarConfig config;
  config.brokers = "kafka:9092";
  return config;
}

TEST(ConfigTest, DefaultsWithBrokersAreValid) { EXPECT_TRUE(ValidateConfig(ValidConfig()).ok()); }

TEST(ConfigTest, BrokersAreRequired) {
  SidecarConfig config = ValidConfig();
  config.brokers = "";
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--brokers"));
}

TEST(ConfigTest, AcceptsHostPortAndUnixListenAddresses) {
  for (const char* listen :
       {"127.0.0.1:50051", "localhost:0", "[::1]:50051", "0.0.0.0:65535", "unix:/tmp/s.sock"}) {
    EXPECT_TRUE(ValidateListenAddress(listen).ok()) << listen;
  }
}

TEST(ConfigTest, RejectsMalformedListenAddresses) {
  for (const char* listen :
       {"", "50051", ":50051", "localhost:", "localhost:http", "localhost:65536", "host:-1",
        "unix:relative.sock", "[::1:50051"}) {
    absl::Status status = ValidateListenAddress(listen);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << listen;
    EXPECT_THAT(status.message(), HasSubstr("--listen")) << listen;
  }
}

TEST(ConfigTest, MaxPendingProducesMustBePositive) {
  SidecarConfig config = ValidConfig();
  config.max_pending_produces = 0;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--max_pending_produces must be between 1 and"));
  config.max_pending_produces = 1;
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ConfigTest, ConsumeSettingsHaveRanges) {
  struct Case {
    void (*mutate)(SidecarConfig&);
    const char* flag;
  };
  const Case cases[] = {
      {[](SidecarConfig& c) { c.max_in_flight_per_stream = 0; }, "--max_in_flight_per_stream"},
      {[](SidecarConfig& c) { c.max_buffered_records = 0; }, "--max_buffered_records"},
      {[](SidecarConfig& c) { c.max_subscriptions = 0; }, "--max_subscriptions"},
      {[](SidecarConfig& c) { c.max_subscriptions = 10001; }, "--max_subscriptions"},
      {[](SidecarConfig& c) { c.commit_interval = absl::ZeroDuration(); }, "--commit_interval_ms"},
      {[](SidecarConfig& c) { c.unsubscribe_linger = absl::Milliseconds(-1); },
       "--unsubscribe_linger_ms"},
      {[](SidecarConfig& c) { c.kafka_unavailable_timeout = absl::ZeroDuration(); },
       "--kafka_unavailable_timeout_ms"},
      {[](SidecarConfig& c) { c.client_inactivity_timeout = absl::ZeroDuration(); },
       "--client_inactivity_timeout_ms"},
      {[](SidecarConfig& c) {
         c.kafka_settings = {{"partition.assignment.strategy", "range"}};
       },
       "--assignment_strategy"},
      {[](SidecarConfig& c) { c.group_instance_id = "pod a"; }, "--group_instance_id"},
      {[](SidecarConfig& c) { c.kafka_settings = {{"group.instance.id", "pod-a"}}; },
       "--group_instance_id"},
      {[](SidecarConfig& c) { c.group_instance_id = std::string(201, 'p'); },
       "--group_instance_id"},
  };
  for (const Case& c : cases) {
    SidecarConfig config = ValidConfig();
    c.mutate(config);
    absl::Status status = ValidateConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_THAT(status.message(), HasSubstr(c.flag));
  }
}

TEST(ConfigTest, ParsesEachStrategyAndOrderingByItsFlagNameAndRefusesOthersNamingTheFlag) {
  for (const char* name : {"cooperative-sticky", "range", "roundrobin"}) {
    absl::StatusOr<AssignmentStrategy> strategy = ParseAssignmentStrategy(name);
    ASSERT_TRUE(strategy.ok()) << name;
    EXPECT_EQ(AssignmentStrategyName(*strategy), name);
  }
  for (const char* name : {"key", "partition", "none"}) {
    absl::StatusOr<Ordering> ordering = ParseOrdering(name);
    ASSERT_TRUE(ordering.ok()) << name;
    EXPECT_EQ(OrderingName(*ordering), name);
  }
  EXPECT_EQ(ParseAssignmentStrategy("sticky").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseAssignmentStrategy("sticky").status().message(),
              HasSubstr("--assignment_strategy must be cooperative-sticky, range or roundrobin"));
  EXPECT_THAT(ParseOrdering("random").status().message(),
              HasSubstr("--ordering must be key, partition or none, got 'random'"));
  EXPECT_EQ(SidecarConfig().assignment_strategy, AssignmentStrategy::kCooperativeSticky);
  EXPECT_EQ(SidecarConfig().ordering, Ordering::kKey);
}

TEST(ConfigTest, TheBufferBudgetSplitsHalfToLibrdkafkasPrefetchWithAFloor) {
  SidecarConfig config = ValidConfig();
  BufferBudget budget = SplitBufferBudget(config);
  EXPECT_EQ(budget.queue_records, 100000u);
  EXPECT_EQ(budget.queue_bytes, size_t{64} << 20);
  EXPECT_EQ(budget.prefetch_records, 50000);
  EXPECT_EQ(budget.prefetch_kbytes, 32 * 1024);
  config.max_buffered_records = 100;
  config.max_buffered_mib = 1;
  budget = SplitBufferBudget(config);
  EXPECT_EQ(budget.prefetch_records, 1000);
  EXPECT_EQ(budget.prefetch_kbytes, 1024);
}

TEST(ConfigTest, AcceptsPodNamesAsInstanceIds) {
  SidecarConfig config = ValidConfig();
  for (const char* id : {"", "orders-7d9f8b6c5-x2x4z", "pod_1.a"}) {
    config.group_instance_id = id;
    EXPECT_TRUE(ValidateConfig(config).ok()) << id;
  }
}

TEST(ConfigTest, ShutdownGraceMustNotBeNegative) {
  SidecarConfig config = ValidConfig();
  config.shutdown_grace = absl::Milliseconds(-1);
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--shutdown_grace_ms"));
}

TEST(ConfigTest, EmbeddedSettingsAreCheckedOnlyForEmbeddedBrokers) {
  SidecarConfig config = ValidConfig();
  config.embedded_partitions = 0;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.brokers = kEmbeddedBrokers;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--embedded_partitions"));
}

TEST(ConfigTest, MessageMaxBytesIsTheLastSettingOrLibrdkafkasDefault) {
  EXPECT_EQ(MessageMaxBytes({}), 1000000);
  EXPECT_EQ(MessageMaxBytes({{"linger.ms", "5"}}), 1000000);
  EXPECT_EQ(MessageMaxBytes({{"message.max.bytes", "10000"}, {"message.max.bytes", "2000000"}}),
            2000000);
  EXPECT_EQ(MessageMaxBytes({{"message.max.bytes", "lots"}}), 1000000);
}

TEST(ConfigTest, ReceiveLimitLeavesRoomForAnyRecordKafkaTakes) {
  constexpr int kMiB = 1 << 20;
  // The default and small settings: 16 MiB, so a 5 MiB record reaches the sidecar.
  EXPECT_EQ(MaxReceiveMessageBytes(1000000), 16 * kMiB);
  EXPECT_EQ(MaxReceiveMessageBytes(10000), 16 * kMiB);
  EXPECT_EQ(MaxReceiveMessageBytes(50 * kMiB), 101 * kMiB);
  // librdkafka's largest message.max.bytes still fits gRPC's int.
  EXPECT_EQ(MaxReceiveMessageBytes(1000000000), 2000000000 + kMiB);
  EXPECT_EQ(MaxReceiveMessageBytes(int64_t{4} << 30), std::numeric_limits<int>::max());
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
