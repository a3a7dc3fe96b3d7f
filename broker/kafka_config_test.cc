#include "broker/kafka_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kafka_sidecar::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(KafkaConfigTest, ParsesPairsInOrderAndTrimsSpaces) {
  absl::StatusOr<KafkaSettings> settings =
      ParseKafkaSettings(" linger.ms=5 , compression.type = lz4,sasl.jaas=a=b");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings, ElementsAre(Pair("linger.ms", "5"), Pair("compression.type", "lz4"),
                                     Pair("sasl.jaas", "a=b")));
}

TEST(KafkaConfigTest, EmptyTextIsNoSettings) {
  absl::StatusOr<KafkaSettings> settings = ParseKafkaSettings("  ");
  ASSERT_TRUE(settings.ok());
  EXPECT_TRUE(settings->empty());
}

TEST(KafkaConfigTest, RejectsItemWithoutEquals) {
  absl::StatusOr<KafkaSettings> settings = ParseKafkaSettings("linger.ms=5,acks");
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(), HasSubstr("'acks'"));
}

TEST(KafkaConfigTest, RejectsEmptyKey) {
  EXPECT_EQ(ParseKafkaSettings("=5").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KafkaConfigTest, RecognizesSecrets) {
  EXPECT_TRUE(IsSecretSetting("sasl.password"));
  EXPECT_TRUE(IsSecretSetting("ssl.key.password"));
  EXPECT_TRUE(IsSecretSetting("sasl.oauthbearer.client.secret"));
  EXPECT_FALSE(IsSecretSetting("linger.ms"));
  EXPECT_FALSE(IsSecretSetting("bootstrap.servers"));
}

}  // namespace
}  // namespace kafka_sidecar::broker
