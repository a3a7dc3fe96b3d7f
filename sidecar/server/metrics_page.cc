#include "sidecar/server/metrics_page.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kafka_sidecar::sidecar {
namespace {

// Label values may hold any character; the format escapes \, " and newlines.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

class Page {
 public:
  // Starts a metric family.
  void Family(const char* name, const char* type, const char* help) {
    absl::StrAppend(&text_, "# HELP kafka_sidecar_", name, " ", help, "\n# TYPE kafka_sidecar_",
                    name, " ", type, "\n");
  }
  void Sample(const char* name, const std::string& labels, int64_t value) {
    SampleText(name, labels, absl::StrCat(value));
  }
  void SampleText(const char* name, const std::string& labels, const std::string& value) {
    absl::StrAppend(&text_, "kafka_sidecar_", name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", value, "\n");
  }
  void Single(const char* name, const char* type, const char* help, int64_t value) {
    Family(name, type, help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// A subscription is a (group, topics) pair.
std::string GroupLabel(const SubscriptionStats& s) {
  return absl::StrCat("group=\"", Escape(s.group), "\",topics=\"", Escape(s.topics), "\"");
}

}  // namespace

std::string RenderMetrics(const MetricsSnapshot& m) {
  Page page;
  page.Single("ready", "gauge", "1 while Kafka is reachable and the sidecar is not draining.",
              m.ready ? 1 : 0);
  page.Single("kafka_reachable", "gauge", "1 while Kafka answered the last health check.",
              m.kafka_reachable ? 1 : 0);

  // Produce.
  const ProduceMetrics& p = m.produce;
  page.Single("produced_records_total", "counter", "Records Kafka acknowledged.",
              p.records_produced.load());
  page.Single("produce_batches_total", "counter",
              "ProduceBatchStream batches handed to the producer; their records count one by "
              "one in produced_records_total and produce_errors_total.",
              p.batches.load());
  page.Single("produce_pending_records", "gauge",
              "Records that produce streams accepted and have not yet answered (each stream "
              "stops reading at --max_pending_produces).",
              p.pending_records.load());
  page.Family("produce_errors_total", "counter",
              "Records that reached the producer and failed, by status code.");
  for (size_t code = 1; code < p.errors.size(); ++code) {
    const int64_t n = p.errors[code].load();
    if (n == 0) continue;
    page.Sample("produce_errors_total",
                absl::StrCat("code=\"",
                             absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), "\""),
                n);
  }
  page.Family("produce_latency_seconds", "histogram",
              "From the sidecar taking a record to Kafka's answer.");
  int64_t cumulative = 0;
  for (size_t i = 0; i < p.latency_buckets.size(); ++i) {
    cumulative += p.latency_buckets[i].load();
    const std::string le = i < ProduceMetrics::kLatencyBuckets.size()
                               ? absl::StrCat(ProduceMetrics::kLatencyBuckets[i])
                               : "+Inf";
    page.Sample("produce_latency_seconds_bucket", absl::StrCat("le=\"", le, "\""), cumulative);
  }
  page.SampleText("produce_latency_seconds_sum", "",
                  absl::StrFormat("%.6f", p.latency_sum_us.load() / 1e6));
  page.Sample("produce_latency_seconds_count", "", cumulative);

  // Consume.
  const ConsumeMetrics& c = m.consume;
  page.Single("records_delivered_total", "counter",
              "Records sent to apps, redeliveries included.", c.records_delivered.load());
  page.Single("records_redelivered_total", "counter",
              "Records sent again after a nack or a stream leaving.",
              c.records_redelivered.load());
  page.Single("records_acked_total", "counter", "Records the apps acked.", c.records_acked.load());
  page.Single("records_nacked_total", "counter", "Records the apps nacked.",
              c.records_nacked.load());
  page.Single("records_retried_total", "counter",
              "Nacked records to be sent again, after the retry policy's backoff.",
              c.records_retried.load());
  page.Single("records_dead_lettered_total", "counter",
              "Records written to a dead-letter topic (their offsets then count as acked).",
              c.records_dead_lettered.load());
  page.Single("dead_letter_write_failures_total", "counter",
              "Dead-letter writes that failed; each is tried again, its offset not committed.",
              c.dead_letter_write_failures.load());
  page.Single("unknown_acks_total", "counter",
              "Acks and nacks of unknown or stale delivery ids (ignored).",
              c.unknown_acks.load());
  page.Single("records_revoked_total", "counter",
              "Records dropped because their partitions went to another member.",
              c.records_revoked.load());
  page.Single("rebalances_total", "counter",
              "Partition assignments and revocations the subscriptions were told of.",
              c.rebalances.load());
  page.Single("group_protocol_mismatches_total", "counter",
              "Subscriptions ended with FAILED_PRECONDITION because Kafka refused their "
              "JoinGroup: the group's other members use an assignment strategy this sidecar "
              "does not offer (INCONSISTENT_GROUP_PROTOCOL; see --assignment_strategy).",
              c.group_protocol_mismatches.load());
  page.Family("commits_total", "counter", "Offset commits, by result.");
  page.Sample("commits_total", "result=\"success\"", c.commits_succeeded.load());
  page.Sample("commits_total", "result=\"failure\"", c.commits_failed.load());
  page.Single("inactivity_drops_total", "counter",
              "Streams ended for holding records without acking.", c.inactivity_drops.load());
  page.Single("pauses_total", "counter", "Times a subscription paused its partitions.",
              c.pauses.load());
  page.Single("consume_streams", "gauge", "Open Consume streams.", c.streams.load());
  page.Family("subscription_streams", "gauge", "Open Consume streams of each subscription.");
  for (const SubscriptionStats& s : m.subscriptions) {
    page.Sample("subscription_streams", GroupLabel(s), static_cast<int64_t>(s.streams));
  }
  page.Single("subscriptions", "gauge", "Consumer-group memberships held now.",
              c.subscriptions.load());

  // One gauge per subscription, labelled by group and topics.
  auto per_group = [&](const char* name, const char* help, size_t SubscriptionStats::*field) {
    page.Family(name, "gauge", help);
    for (const SubscriptionStats& s : m.subscriptions) {
      page.Sample(name, GroupLabel(s), static_cast<int64_t>(s.*field));
    }
  };
  per_group("in_flight_records", "Records sent to apps and not yet acked.",
            &SubscriptionStats::in_flight);
  per_group("buffered_records", "Records fetched and waiting to be sent.",
            &SubscriptionStats::buffered);
  per_group("assigned_partitions", "Partitions the group gave this sidecar.",
            &SubscriptionStats::assigned_partitions);
  per_group("paused_partitions", "Partitions paused because too much waits.",
            &SubscriptionStats::paused_partitions);
  per_group("waiting_retry_records", "Nacked records waiting for their retry backoff.",
            &SubscriptionStats::waiting_retry);
  per_group("dead_lettering_records",
            "Records given up on whose dead-letter write is under way or to be tried again.",
            &SubscriptionStats::dead_lettering);
  per_group("dead_lettered_records",
            "Records this subscription wrote to its dead-letter topic since it started.",
            &SubscriptionStats::dead_lettered);
  page.Family("oldest_unacked_record_age_seconds", "gauge",
              "Time lag: how long ago the oldest record fetched and not yet acked was written "
              "(its Kafka timestamp); 0 when every fetched record is acked.");
  for (const SubscriptionStats& s : m.subscriptions) {
    page.SampleText("oldest_unacked_record_age_seconds", GroupLabel(s),
                    absl::StrFormat("%.3f", absl::ToDoubleSeconds(s.oldest_unacked_age)));
  }
  page.Family("consumer_lag", "gauge",
              "Records between the group's committed offset and the log end, per partition.");
  for (const SubscriptionStats& s : m.subscriptions) {
    for (const auto& [tp, lag] : s.lag) {
      page.Sample("consumer_lag",
                  absl::StrCat(GroupLabel(s), ",topic=\"", Escape(tp.topic), "\",partition=\"",
                               tp.partition, "\""),
                  lag);
    }
  }
  return page.Take();
}

}  // namespace kafka_sidecar::sidecar
