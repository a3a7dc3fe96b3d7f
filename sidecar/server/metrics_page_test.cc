#include "sidecar/server/metrics_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kafka_sidecar::sidecar {
namespace {

using ::testing::HasSubstr;

TEST(MetricsPageTest, RendersCountersHistogramAndLabelledGauges) {
  ProduceMetrics produce;
  ConsumeMetrics consume;
  produce.Record(absl::OkStatus(), absl::Microseconds(800));
  produce.Record(absl::OkStatus(), absl::Milliseconds(20));
  produce.Record(absl::UnavailableError("down"), absl::Seconds(40));
  produce.batches = 5;
  produce.pending_records = 12;
  consume.records_delivered = 1234567;
  consume.commits_failed = 2;
  consume.group_protocol_mismatches = 3;
  SubscriptionStats stats;
  stats.group = "billing \"eu\"";
  stats.topics = "orders,refunds";
  stats.in_flight = 7;
  stats.lag.emplace_back(broker::TopicPartition{"orders", 3}, 42);
  stats.oldest_unacked_age = absl::Milliseconds(12345);
  const std::string page = RenderMetrics({produce, consume, {stats}, true, true});

  EXPECT_THAT(page, HasSubstr("# TYPE kafka_sidecar_produced_records_total counter\n"
                              "kafka_sidecar_produced_records_total 2\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_errors_total{code=\"UNAVAILABLE\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_batches_total 5\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE kafka_sidecar_produce_pending_records gauge\n"
                              "kafka_sidecar_produce_pending_records 12\n"));
  // Buckets are cumulative; the 40 s record only counts in +Inf.
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_bucket{le=\"0.001\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_bucket{le=\"0.025\"} 2\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_bucket{le=\"30\"} 2\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_count 3\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_produce_latency_seconds_sum 40.020800\n"));
  // Integers stay exact.
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_records_delivered_total 1234567\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_commits_total{result=\"failure\"} 2\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE kafka_sidecar_group_protocol_mismatches_total counter\n"
                              "kafka_sidecar_group_protocol_mismatches_total 3\n"));
  // Label values are escaped.
  const std::string labels = "group=\"billing \\\"eu\\\"\",topics=\"orders,refunds\"";
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_in_flight_records{" + labels + "} 7\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_consumer_lag{" + labels +
                              ",topic=\"orders\",partition=\"3\"} 42\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE kafka_sidecar_oldest_unacked_record_age_seconds gauge\n"
                              "kafka_sidecar_oldest_unacked_record_age_seconds{" +
                              labels + "} 12.345\n"));
  EXPECT_THAT(page, HasSubstr("kafka_sidecar_ready 1\n"));
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
