#ifndef KAFKA_SIDECAR_BROKER_KAFKA_CONFIG_H_
#define KAFKA_SIDECAR_BROKER_KAFKA_CONFIG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kafka_sidecar::broker {

// librdkafka settings as ordered (name, value) pairs; later pairs win.
using KafkaSettings = std::vector<std::pair<std::string, std::string>>;

// Parses a properties file's text: one `key=value` per line; blank lines and lines starting
// with `#` or `!` are skipped. Errors name `source` and the line.
absl::StatusOr<KafkaSettings> ParseKafkaProperties(absl::string_view text,
                                                   absl::string_view source);

// The --kafka_config value: comma-separated items, each `key=value` (spaces around items are
// trimmed; an empty string is no settings) or `@/path/to/file` (a properties file, read now;
// how secrets from a mounted Kubernetes Secret come in). Later settings win. INVALID_ARGUMENT
// naming the item or line when one is malformed (never quoting it), or a file cannot be read.
// Whether librdkafka knows a key is checked when a client is created with the settings.
absl::StatusOr<KafkaSettings> LoadKafkaSettings(absl::string_view flag);

// True for names shaped like librdkafka's dotted property names (`linger.ms`): safe to show in
// an error even when librdkafka does not know them (other text may be a piece of a secret).
bool LooksLikePropertyName(absl::string_view name);

// True for setting names whose values are secrets (passwords, keys, tokens): they must never
// be logged or shown.
bool IsSecretSetting(absl::string_view name);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_KAFKA_CONFIG_H_
