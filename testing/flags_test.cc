// The real binary refuses bad flags with a clear message and a non-zero exit, before serving.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/embedded_cluster.h"
#include "testing/consuming_app.h"
#include "testing/probes.h"
#include "testing/sidecar_process.h"
#include "testing/subprocess.h"

namespace kafka_sidecar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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
        BadFlagCase{{"--brokers=k:9092", "--listen=0.0.0.0:50051"},
                    "is not a loopback address"},
        BadFlagCase{{"--brokers=k:9092", "--metrics_listen=unix:/tmp/m.sock"},
                    "--metrics_listen='unix:/tmp/m.sock'"},
        BadFlagCase{{"--brokers=k:9092", "--health_listen=50052"}, "--health_listen='50052'"},
        BadFlagCase{{"--brokers=k:9092", "--kafka_config=@/no/such/file.properties"},
                    "cannot read the properties file @/no/such/file.properties"},
        BadFlagCase{{"--brokers=k:9092", "--health_check_interval_ms=0"},
                    "--health_check_interval_ms"},
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

// Secrets given inline and in a properties file stay out of every log line, every HTTP page
// and the help output, while the sidecar produces and consumes with them configured.
TEST(FlagsSecretTest, SecretsStayOutOfLogsPagesAndHelp) {
  const std::string tmp = std::getenv("TEST_TMPDIR");
  const std::string properties = tmp + "/kafka.properties";
  constexpr char kInline[] = "inline-secret-9c1e";
  constexpr char kInFile[] = "file-secret-7f3a";
  std::ofstream(properties) << "# mounted from a Secret\nsasl.password=" << kInFile << "\n";
  const std::string kafka_config = absl::StrCat(
      "--kafka_config=ssl.key.password=", kInline,
      ",session.timeout.ms=6000,heartbeat.interval.ms=500,fetch.wait.max.ms=10,@", properties);
  auto expect_no_secret = [&](const std::string& where, const std::string& text) {
    EXPECT_THAT(text, Not(HasSubstr(kInline))) << where;
    EXPECT_THAT(text, Not(HasSubstr(kInFile))) << where;
  };

  for (const char* help : {"--help", "--helpfull"}) {
    absl::StatusOr<std::unique_ptr<Subprocess>> shown =
        Subprocess::Start({kSidecar, "--brokers=k:9092", kafka_config, help}, tmp + "/help.log");
    ASSERT_TRUE(shown.ok()) << shown.status();
    ASSERT_TRUE((*shown)->Wait(absl::Seconds(30)).ok());
    EXPECT_THAT((*shown)->Log(), HasSubstr("kafka_config"));
    expect_no_secret(help, (*shown)->Log());
  }

  auto cluster = broker::EmbeddedCluster::Create(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->CreateTopic("secret", 1).ok());
  auto sidecar = SidecarProcess::Start((*cluster)->bootstrap_servers(), {kafka_config}, "secret");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto stub = (*sidecar)->NewStub();
  grpc::ClientContext context;
  kafka_sidecar::v1::ProduceRequest request;
  request.set_topic("secret");
  request.set_value("v");
  kafka_sidecar::v1::ProduceResponse response;
  ASSERT_TRUE(stub->Produce(&context, request, &response).ok());
  DeliveryLog log;
  {
    ConsumingApp app("app", *stub, "secret-group", {"secret"}, 10, log);
    ASSERT_TRUE(app.subscribed());
    ASSERT_TRUE(log.WaitUntil([](auto& d) { return !d.empty(); }, absl::Seconds(30)));
  }
  for (const char* page : {"/metrics", "/healthz", "/readyz"}) {
    auto [code, body] = HttpGet((*sidecar)->metrics_port(), page);
    EXPECT_EQ(code, 200) << page;
    expect_no_secret(page, body);
  }
  (*sidecar)->process().Signal(SIGTERM);
  ASSERT_TRUE((*sidecar)->process().Wait(absl::Seconds(30)).ok());
  EXPECT_THAT((*sidecar)->process().Log(), HasSubstr("[secret-group] assigned"));
  expect_no_secret("the log", (*sidecar)->process().Log());
}

}  // namespace
}  // namespace kafka_sidecar::testing
