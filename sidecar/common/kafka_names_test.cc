#include "sidecar/common/kafka_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kafka_sidecar::sidecar {
namespace {

using ::testing::HasSubstr;

TEST(ValidateTopicNameTest, TakesWhatKafkaTakes) {
  for (const std::string& topic : std::vector<std::string>{
           "orders", "a", "Orders.v2_eu-1", "...", ".hidden", "a..b", std::string(249, 'x')}) {
    EXPECT_TRUE(ValidateTopicName(topic, "topic").ok()) << topic;
  }
}

TEST(ValidateTopicNameTest, RefusesWhatKafkaForbidsNamingTheField) {
  for (const std::string& topic :
       std::vector<std::string>{"", ".", "..", std::string(250, 'x'), "no spaces", "a/b",
                                "tab\there", "line\nbreak", std::string("nul\0", 4)}) {
    absl::Status status = ValidateTopicName(topic, "subscribe.topics[3]");
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << topic << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("subscribe.topics[3]")) << topic;
    EXPECT_EQ(status.message().find('\n'), absl::string_view::npos) << status;
  }
}

TEST(ValidateGroupIdTest, TakesUpTo32767Bytes) {
  EXPECT_TRUE(ValidateGroupId("g", "subscribe.group").ok());
  EXPECT_TRUE(ValidateGroupId(std::string(32767, 'g'), "subscribe.group").ok());
  // Anything else goes: Kafka has no rule on a group id's characters.
  EXPECT_TRUE(ValidateGroupId("orders readers/eu\n", "subscribe.group").ok());
}

TEST(ValidateGroupIdTest, RefusesEmptyAndLongerNamingTheField) {
  for (const std::string& group : {std::string(), std::string(32768, 'g')}) {
    absl::Status status = ValidateGroupId(group, "subscribe.group");
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    EXPECT_THAT(status.message(), HasSubstr("subscribe.group"));
  }
}

TEST(PrintableNameTest, EscapesWhatCouldForgeALogLine) {
  EXPECT_EQ(PrintableName("orders"), "orders");
  EXPECT_EQ(PrintableName("a\nE1202 forged"), "a\\nE1202 forged");
  EXPECT_EQ(PrintableName("q\"\\"), "q\\\"\\\\");
  EXPECT_EQ(PrintableName(std::string("\0\x7f", 2)), "\\x00\\x7f");
}

TEST(PrintableNameTest, CutsLongNamesSayingHowLong) {
  const std::string printed = PrintableName(std::string(32767, 'g'));
  EXPECT_LT(printed.size(), 400u);
  EXPECT_THAT(printed, HasSubstr("(32767 bytes)"));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
