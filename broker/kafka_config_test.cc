#include "broker/kafka_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
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

TEST(KafkaConfigTest, MalformedSecretItemIsNotEchoed) {
  absl::StatusOr<KafkaSettings> settings = ParseKafkaSettings("sasl.password:hunter2");
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(), Not(HasSubstr("hunter2")));
}

TEST(KafkaConfigTest, PropertiesSkipCommentsAndBlankLines) {
  absl::StatusOr<KafkaSettings> settings = ParseKafkaProperties(
      "# SASL for the prod cluster\n\n  security.protocol = SASL_SSL\n! old style comment\n"
      "sasl.jaas.config=a=b, c=d\n",
      "@client.properties");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings, ElementsAre(Pair("security.protocol", "SASL_SSL"),
                                     Pair("sasl.jaas.config", "a=b, c=d")));
}

TEST(KafkaConfigTest, PropertiesErrorNamesTheFileAndLine) {
  absl::StatusOr<KafkaSettings> settings =
      ParseKafkaProperties("linger.ms=5\nacks all\n", "@client.properties");
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(), HasSubstr("@client.properties line 2"));
}

TEST(KafkaConfigTest, LoadsFilesAndInlineItemsInOrder) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/kafka.properties";
  std::ofstream(path) << "sasl.username=orders\nsasl.password=s3cret\nlinger.ms=20\n";
  absl::StatusOr<KafkaSettings> settings =
      LoadKafkaSettings(absl::StrCat("linger.ms=5,@", path, ",acks=all"));
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings,
              ElementsAre(Pair("linger.ms", "5"), Pair("sasl.username", "orders"),
                          Pair("sasl.password", "s3cret"), Pair("linger.ms", "20"),
                          Pair("acks", "all")));
}

TEST(KafkaConfigTest, MissingFileIsAClearError) {
  absl::StatusOr<KafkaSettings> settings = LoadKafkaSettings("@/no/such/kafka.properties");
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(),
              HasSubstr("cannot read the properties file @/no/such/kafka.properties"));
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
