#include "broker/compression_check.h"

#include <librdkafka/rdkafka.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "broker/rdkafka_handle.h"

namespace kafka_sidecar::broker {
namespace {

struct VersionLog {
  absl::Mutex mu;
  std::vector<std::pair<int, int>> produce ABSL_GUARDED_BY(mu);
};

void CollectVersions(const rd_kafka_t* rk, int, const char*, const char* message) {
  if (std::optional<std::pair<int, int>> versions = ProduceVersions(message)) {
    auto* log = static_cast<VersionLog*>(rd_kafka_opaque(rk));
    absl::MutexLock lock(&log->mu);
    log->produce.push_back(*versions);
  }
}

}  // namespace

std::optional<std::pair<int, int>> ProduceVersions(absl::string_view line) {
  constexpr absl::string_view kMarker = "ApiKey Produce (0) Versions ";
  const size_t at = line.find(kMarker);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view range = line.substr(at + kMarker.size());
  const size_t dots = range.find("..");
  if (dots == absl::string_view::npos) return std::nullopt;
  absl::string_view high = range.substr(dots + 2);
  high = high.substr(0, high.find_first_not_of("0123456789"));
  int min = 0;
  int max = 0;
  if (!absl::SimpleAtoi(range.substr(0, dots), &min) || !absl::SimpleAtoi(high, &max)) {
    return std::nullopt;
  }
  return std::make_pair(min, max);
}

std::optional<std::string> CompressionWarning(
    absl::string_view codec, const std::vector<std::pair<int, int>>& produce_versions) {
  // The version librdkafka 2.0.2 insists on for each codec.
  int needs;
  if (codec == "gzip" || codec == "snappy" || codec == "lz4") {
    needs = 2;
  } else if (codec == "zstd") {
    needs = 7;
  } else {
    return std::nullopt;
  }
  for (const auto& [min, max] : produce_versions) {
    if (needs < min || needs > max) {
      return absl::StrCat(
          "compression.type=", codec, " has no effect on this cluster: a broker accepts Produce v",
          min, "..", max, " and librdkafka ", rd_kafka_version_str(), " compresses ", codec,
          " only for Produce v", needs,
          ", so it sends these batches uncompressed (librdkafka issue 4956, fixed in 2.11.1)");
    }
  }
  return std::nullopt;
}

std::optional<CompressionCheck> CheckCompression(const std::string& bootstrap,
                                                 const KafkaSettings& settings,
                                                 absl::Duration timeout) {
  CompressionCheck check;
  for (const auto& [name, value] : settings) {
    if (name == "compression.type" || name == "compression.codec") {
      check.codec = absl::AsciiStrToLower(value);
    }
  }
  if (check.codec.empty() || check.codec == "none" || check.codec == "inherit") {
    return std::nullopt;
  }
  // A client of its own with the operator's connection settings (TLS, SASL), whose debug
  // output goes only to the collector.
  KafkaSettings probe = {{"bootstrap.servers", bootstrap}};
  probe.insert(probe.end(), settings.begin(), settings.end());
  probe.emplace_back("debug", "feature");
  absl::StatusOr<RdKafkaConfPtr> conf = NewRdKafkaConf(probe);
  if (!conf.ok()) return std::nullopt;
  VersionLog log;
  rd_kafka_conf_set_log_cb(conf->get(), &CollectVersions);
  rd_kafka_conf_set_opaque(conf->get(), &log);
  absl::StatusOr<RdKafkaPtr> rk = NewRdKafka(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!rk.ok() || !CheckReachable(rk->get(), timeout).ok()) return std::nullopt;
  rk->reset();  // no more log lines after this
  absl::MutexLock lock(&log.mu);
  if (log.produce.empty()) return std::nullopt;
  check.produce_versions = log.produce;
  check.warning = CompressionWarning(check.codec, check.produce_versions);
  return check;
}

}  // namespace kafka_sidecar::broker
