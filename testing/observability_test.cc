// What operators see, end to end in one process (the real server, librdkafka, the embedded
// cluster): the gRPC health service and /readyz follow Kafka's reachability and the drain,
// liveness does not; the /metrics page is scraped and its values move as records flow.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "testing/consuming_app.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/sidecar_harness.h"

namespace kafka_sidecar::testing {
namespace {

using ::testing::HasSubstr;

// How long a health check may take to answer on a loaded machine: a bound, not an expectation.
constexpr absl::Duration kAnswerBound = absl::Seconds(10);

std::unique_ptr<SidecarHarness> StartSidecar(
    absl::Duration shutdown_grace = SidecarHarness::Options().shutdown_grace) {
  SidecarHarness::Options options;
  options.shutdown_grace = shutdown_grace;
  options.config.health_check_interval = absl::Milliseconds(200);
  options.config.health_listen = "127.0.0.1:0";
  options.config.commit_interval = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<SidecarHarness>> harness =
      SidecarHarness::Start(std::move(options));
  EXPECT_TRUE(harness.ok()) << harness.status();
  return harness.ok() ? *std::move(harness) : nullptr;
}

TEST(ObservabilityTest, HealthFollowsKafkaAndTheDrainButLivenessStays) {
  // The drain below lasts until the app acks what it holds, which the grace must outlast
  // whatever the machine's speed: the checks made during the drain are bounded by the app.
  auto harness = StartSidecar(absl::Minutes(2));
  ASSERT_NE(harness, nullptr);
  const int http = harness->server().metrics_port();
  const std::string api = harness->target();
  const std::string probes = absl::StrCat("127.0.0.1:", harness->server().health_port());
  for (const std::string& target : {api, probes}) {
    EXPECT_TRUE(WaitForHealth(target, "", true, absl::Seconds(10))) << target;
    EXPECT_TRUE(WaitForHealth(target, "kafka_sidecar.v1.KafkaSidecar", true, absl::Seconds(10)));
    EXPECT_TRUE(WaitForHealth(target, "liveness", true, absl::Seconds(10)));
  }
  EXPECT_EQ(HttpGet(http, "/readyz").first, 200);

  // Every broker down: not ready (gRPC and HTTP), still alive.
  harness->SetAllBrokersDown();
  EXPECT_TRUE(WaitForHealth(probes, "", false, absl::Seconds(15)));
  EXPECT_TRUE(WaitForHealth(api, "kafka_sidecar.v1.KafkaSidecar", false, absl::Seconds(15)));
  EXPECT_TRUE(WaitForHealth(probes, "liveness", true, kAnswerBound));
  auto [ready_code, ready_body] = HttpGet(http, "/readyz");
  EXPECT_EQ(ready_code, 503);
  EXPECT_THAT(ready_body, HasSubstr("Kafka unreachable"));
  EXPECT_EQ(HttpGet(http, "/healthz").first, 200);
  EXPECT_THAT(HttpGet(http, "/metrics").second, HasSubstr("kafka_sidecar_ready 0\n"));

  // Back up: ready again.
  harness->SetAllBrokersUp();
  EXPECT_TRUE(WaitForHealth(probes, "", true, absl::Seconds(15)));
  EXPECT_EQ(HttpGet(http, "/readyz").first, 200);

  // Draining: not ready while the apps have their grace; still alive. An app holding records
  // keeps the drain going until it acks them.
  ASSERT_TRUE(harness->cluster().CreateTopic("drained", 1).ok());
  ASSERT_TRUE(ProduceDirect(harness->bootstrap(), "drained", 10, 10).ok());
  DeliveryLog log;
  ConsumingApp app("app", harness->stub(), "drainers", {"drained"}, 100, log);
  ASSERT_TRUE(app.subscribed());
  app.Hold();
  ASSERT_TRUE(log.WaitUntil([](auto& d) { return d.size() == 10; }, absl::Seconds(30)));
  std::thread shutdown([&harness] { harness->server().Shutdown(); });
  EXPECT_TRUE(WaitForHealth(probes, "", false, kAnswerBound));
  EXPECT_TRUE(WaitForHealth(probes, "liveness", true, kAnswerBound));
  auto [drain_code, drain_body] = HttpGet(http, "/readyz");
  EXPECT_EQ(drain_code, 503);
  EXPECT_THAT(drain_body, HasSubstr("draining"));
  app.Release();
  shutdown.join();
}


// The sum over every series of `name` whose labels contain `label`.
int64_t Sum(const std::string& page, const std::string& name, const std::string& label) {
  int64_t sum = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, name + "{") || !absl::StrContains(line, label)) continue;
    int64_t value = 0;
    if (absl::SimpleAtoi(line.substr(line.rfind(' ') + 1), &value)) sum += value;
  }
  return sum;
}

// Scrapes every 50 ms until `holds(page)` or `timeout` passes; the last page. (The sidecar
// updates its figures on its own schedule.)
std::string ScrapeUntil(int port, const std::function<bool(const std::string&)>& holds,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string page = HttpGet(port, "/metrics").second;
  while (!holds(page) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));  // NOLINT(sleep-ok): between looks, within the deadline
    page = HttpGet(port, "/metrics").second;
  }
  return page;
}

TEST(ObservabilityTest, MetricsPageValuesMoveAsRecordsFlow) {
  constexpr int kRecords = 90;
  constexpr int kPartitions = 3;
  auto harness = StartSidecar();
  ASSERT_NE(harness, nullptr);
  const int http = harness->server().metrics_port();
  ASSERT_TRUE(harness->cluster().CreateTopic("metered", kPartitions).ok());
  const std::string before = HttpGet(http, "/metrics").second;
  EXPECT_EQ(MetricValue(before, "kafka_sidecar_produced_records_total"), 0);
  EXPECT_EQ(MetricValue(before, "kafka_sidecar_subscriptions"), 0);

  // Produce through the sidecar.
  for (int i = 0; i < kRecords; ++i) {
    grpc::ClientContext context;
    kafka_sidecar::v1::ProduceRequest request;
    request.set_topic("metered");
    request.set_key(absl::StrCat("key-", i));
    request.set_value("v");
    kafka_sidecar::v1::ProduceResponse response;
    ASSERT_TRUE(harness->stub().Produce(&context, request, &response).ok());
  }
  std::string page = HttpGet(http, "/metrics").second;
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_produced_records_total"), kRecords);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_produce_latency_seconds_count"), kRecords);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_produce_latency_seconds_bucket{le=\"+Inf\"}"), kRecords);

  // An app receives everything and holds it: in flight, nothing committed, the lag is all.
  DeliveryLog log;
  ConsumingApp app("app", harness->stub(), "meter", {"metered"}, 1000, log);
  ASSERT_TRUE(app.subscribed());
  app.Hold();
  ASSERT_TRUE(log.WaitUntil([](auto& d) { return d.size() == kRecords; }, absl::Seconds(30)));
  const std::string group = "group=\"meter\",topics=\"metered\"";
  page = ScrapeUntil(
      http,
      [&](const std::string& p) {
        return Sum(p, "kafka_sidecar_consumer_lag", group) == kRecords &&
               MetricValue(p, "kafka_sidecar_in_flight_records{" + group + "}") == kRecords;
      },
      absl::Seconds(10));
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_in_flight_records{" + group + "}"), kRecords);
  EXPECT_EQ(Sum(page, "kafka_sidecar_consumer_lag", group), kRecords);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_records_delivered_total"), kRecords);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_records_acked_total"), 0);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_assigned_partitions{" + group + "}"), kPartitions);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_consume_streams"), 1);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_subscriptions"), 1);
  EXPECT_GE(MetricValue(page, "kafka_sidecar_rebalances_total"), 1);

  // The app acks: nothing in flight, the commits catch up, no lag.
  app.Release();
  page = ScrapeUntil(
      http,
      [&](const std::string& p) {
        return Sum(p, "kafka_sidecar_consumer_lag", group) == 0 &&
               MetricValue(p, "kafka_sidecar_records_acked_total") == kRecords;
      },
      absl::Seconds(10));
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_records_acked_total"), kRecords);
  EXPECT_EQ(MetricValue(page, "kafka_sidecar_in_flight_records{" + group + "}"), 0);
  EXPECT_EQ(Sum(page, "kafka_sidecar_consumer_lag", group), 0);
  EXPECT_GE(MetricValue(page, "kafka_sidecar_commits_total{result=\"success\"}"), 1);
}

}  // namespace
}  // namespace kafka_sidecar::testing
