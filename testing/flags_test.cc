// The real binary refuses bad flags with a clear message and a non-zero exit, before serving.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "testing/subprocess.h"

namespace kafka_sidecar::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSidecar[] = "sidecar/kafka_sidecar";

struct BadFlagCase {
  std::vector<std::string> flags;
  std::string message;
};

class FlagsTest : public ::testing::TestWithParam<BadFlagCase> {};

TEST_P(FlagsTest, BadFlagStopsTheStartWithAClearMessage) {
  std::vector<std::string> argv = {kSidecar};
  argv.insert(argv.end(), GetParam().flags.begin(), GetParam().flags.end());
  const std::string log = std::string(std::getenv("TEST_TMPDIR")) + "/flags.log";
  absl::StatusOr<std::unique_ptr<Subprocess>> sidecar = Subprocess::Start(argv, log);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  absl::StatusOr<int> code = (*sidecar)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_THAT((*sidecar)->Log(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadFlags, FlagsTest,
    ::testing::Values(
        BadFlagCase{{}, "--brokers is required"},
        BadFlagCase{{"--brokers=k:9092", "--max_pending_produces=0"},
                    "--max_pending_produces must be between 1 and"},
        BadFlagCase{{"--brokers=k:9092", "--listen=nowhere"}, "--listen='nowhere'"},
        BadFlagCase{{"--brokers=k:9092", "--shutdown_grace_ms=-5"}, "--shutdown_grace_ms"},
        BadFlagCase{{"--brokers=k:9092", "--kafka_config=linger.ms"}, "--kafka_config"},
        BadFlagCase{{"--brokers=k:9092", "--kafka_config=no.such.setting=1"},
                    "no.such.setting"},
        BadFlagCase{{"--brokers=k:9092", "--kafka_config=sasl.password=hunter2,acks=maybe"},
                    "acks"},
        BadFlagCase{{"--brokers=embedded", "--embedded_partitions=0"}, "--embedded_partitions"},
        BadFlagCase{{"--brokers=k:9092", "--max_pending_produces=lots"}, "max_pending_produces"},
        BadFlagCase{{"--brokers=k:9092", "--commit_interval_ms=0"}, "--commit_interval_ms"},
        BadFlagCase{{"--brokers=k:9092", "--max_in_flight_per_stream=0"},
                    "--max_in_flight_per_stream"},
        BadFlagCase{{"--brokers=k:9092", "--max_buffered_records=-1"}, "--max_buffered_records"},
        BadFlagCase{{"--brokers=k:9092", "--ordering=random"}, "--ordering must be key"},
        BadFlagCase{{"--brokers=k:9092", "--assignment_strategy=sticky"},
                    "--assignment_strategy must be cooperative-sticky, range or roundrobin"},
        BadFlagCase{{"--brokers=k:9092", "--group_instance_id=pod/1"}, "--group_instance_id"},
        BadFlagCase{{"--brokers=k:9092", "--no_such_flag=1"}, "no_such_flag"}));

TEST(FlagsSecretTest, SecretSettingValuesAreNeverPrinted) {
  const std::string log = std::string(std::getenv("TEST_TMPDIR")) + "/secret.log";
  absl::StatusOr<std::unique_ptr<Subprocess>> sidecar = Subprocess::Start(
      {kSidecar, "--brokers=k:9092", "--kafka_config=sasl.password=hunter2,linger.ms=soon"},
      log);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  absl::StatusOr<int> code = (*sidecar)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_NE(*code, 0);
  EXPECT_THAT((*sidecar)->Log(), HasSubstr("linger.ms"));
  EXPECT_THAT((*sidecar)->Log(), ::testing::Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace kafka_sidecar::testing
