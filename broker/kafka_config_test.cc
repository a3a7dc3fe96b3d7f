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
      LoadKafkaSettings(" linger.ms=5 , compression.type = lz4,sasl.jaas=a=b");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings, ElementsAre(Pair("linger.ms", "5"), Pair("compression.type", "lz4"),
                                     Pair("sasl.jaas", "a=b")));
}

TEST(KafkaConfigTest, EmptyTextIsNoSettings) {
  absl::StatusOr<KafkaSettings> settings = LoadKafkaSettings("  ");
  ASSERT_TRUE(settings.ok());
  EXPECT_TRUE(settings->empty());
}

TEST(KafkaConfigTest, RejectsItemWithoutEquals) {
  absl::StatusOr<KafkaSettings> settings = LoadKafkaSettings("linger.ms=5,acks");
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(), HasSubstr("item 2 is not of the form key=value"));
}

TEST(KafkaConfigTest, RejectsEmptyKey) {
  EXPECT_EQ(LoadKafkaSettings("=5").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KafkaConfigTest, MalformedItemsAreNeverEchoed) {
  // A secret written with the wrong separator, a password split at its comma, a PEM key's
  // second line: none of it may reach a log.
  for (absl::string_view text : {"sasl.password:hunter2", "sasl.password=hun,ter2"}) {
    absl::StatusOr<KafkaSettings> settings = LoadKafkaSettings(text);
    EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(settings.status().message(), Not(HasSubstr("hun"))) << text;
    EXPECT_THAT(settings.status().message(), Not(HasSubstr("ter2"))) << text;
  }
  absl::StatusOr<KafkaSettings> pem = ParseKafkaProperties(
      "ssl.key.pem=-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n", "@key.properties");
  EXPECT_THAT(pem.status().message(), HasSubstr("@key.properties line 2"));
  EXPECT_THAT(pem.status().message(), Not(HasSubstr("MIIEvQ")));
}

TEST(KafkaConfigTest, RecognizesPropertyNames) {
  EXPECT_TRUE(LooksLikePropertyName("linger.ms"));
  EXPECT_TRUE(LooksLikePropertyName("sasl.passwd"));
  EXPECT_FALSE(LooksLikePropertyName("ter2"));
  EXPECT_FALSE(LooksLikePropertyName("MIIEvQ.x"));
  EXPECT_FALSE(LooksLikePropertyName(".ms"));
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

TEST(KafkaConfigTest, AFolderIsNotAPropertiesFile) {
  absl::StatusOr<KafkaSettings> settings =
      LoadKafkaSettings(absl::StrCat("@", std::getenv("TEST_TMPDIR")));
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(settings.status().message(), HasSubstr("is not a file"));
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
