#ifndef KAFKA_SIDECAR_BROKER_COMPRESSION_CHECK_H_
#define KAFKA_SIDECAR_BROKER_COMPRESSION_CHECK_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/kafka_config.h"

namespace kafka_sidecar::broker {

// librdkafka 2.0.2 compresses gzip, snappy and lz4 batches only for a broker that accepts
// Produce version 2 exactly; otherwise it sends them uncompressed, with a notice per batch
// (librdkafka issue 4956, fixed in 2.11.1; zstd has the same flaw for Produce v7). Apache
// Kafka 4.x removed Produce v0-v2 but still lists them in ApiVersions for this reason
// (KAFKA-18659), so it is not affected; a broker or Kafka-compatible service that lists only
// newer versions is.

// The lowest and highest Produce version a broker accepts, from librdkafka's `feature` debug
// line "ApiKey Produce (0) Versions 0..11"; nullopt for any other line.
std::optional<std::pair<int, int>> ProduceVersions(absl::string_view debug_line);

// The warning to log for `codec` given the Produce versions of each broker; nullopt when
// librdkafka will compress as asked.
std::optional<std::string> CompressionWarning(
    absl::string_view codec, const std::vector<std::pair<int, int>>& produce_versions);

struct CompressionCheck {
  std::string codec;  // as asked (compression.type), lower case; empty: none asked
  std::vector<std::pair<int, int>> produce_versions;  // per broker reached
  std::optional<std::string> warning;
};

// When `settings` ask for compression, connects to the cluster at `bootstrap` with them (up to
// `timeout`) and learns its brokers' Produce versions. nullopt when no compression is asked
// or the cluster could not be asked.
std::optional<CompressionCheck> CheckCompression(const std::string& bootstrap,
                                                 const KafkaSettings& settings,
                                                 absl::Duration timeout);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_COMPRESSION_CHECK_H_
