#include "broker/compression_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kafka_sidecar::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::Pair;

TEST(CompressionCheckTest, ReadsProduceVersionsFromLibrdkafkasDebugLine) {
  EXPECT_THAT(ProduceVersions("127.0.0.1:9092/bootstrap:   ApiKey Produce (0) Versions 0..13"),
              Optional(Pair(0, 13)));
  EXPECT_THAT(ProduceVersions("b/1:   ApiKey Produce (0) Versions 3..11 (extra)"),
              Optional(Pair(3, 11)));
  EXPECT_EQ(ProduceVersions("b/1:   ApiKey Fetch (1) Versions 4..17"), std::nullopt);
  EXPECT_EQ(ProduceVersions("b/1:   ApiKey Produce (0) Versions x..y"), std::nullopt);
}

TEST(CompressionCheckTest, WarnsOnlyWhereLibrdkafkaWouldSendUncompressed) {
  // Apache Kafka 3.9 and 4.x list Produce v0 on: every codec works.
  for (const char* codec : {"gzip", "snappy", "lz4", "zstd"}) {
    EXPECT_EQ(CompressionWarning(codec, {{0, 11}, {0, 13}}), std::nullopt) << codec;
  }
  // A broker that lists only v3 and newer: gzip, snappy and lz4 go out uncompressed.
  for (const char* codec : {"gzip", "snappy", "lz4"}) {
    std::optional<std::string> warning = CompressionWarning(codec, {{0, 13}, {3, 13}});
    ASSERT_TRUE(warning.has_value()) << codec;
    EXPECT_THAT(*warning, HasSubstr(std::string("compression.type=") + codec));
    EXPECT_THAT(*warning, HasSubstr("Produce v3..13"));
  }
  EXPECT_EQ(CompressionWarning("zstd", {{3, 13}}), std::nullopt);
  EXPECT_TRUE(CompressionWarning("zstd", {{8, 13}}).has_value());
  EXPECT_EQ(CompressionWarning("none", {{3, 13}}), std::nullopt);
}

}  // namespace
}  // namespace kafka_sidecar::broker
