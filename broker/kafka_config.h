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

// Parses `key=value,key=value` (spaces around items are trimmed; an empty string is no
// settings). Returns INVALID_ARGUMENT naming the item when one has no `=` or an empty key.
// Whether librdkafka knows a key is checked when a client is created with the settings.
absl::StatusOr<KafkaSettings> ParseKafkaSettings(absl::string_view text);

// Parses a properties file's text: one `key=value` per line; blank lines and lines starting
// with `#` or `!` are skipped. Errors name `source` and the line.
absl::StatusOr<KafkaSettings> ParseKafkaProperties(absl::string_view text,
                                                   absl::string_view source);

// The --kafka_config value: comma-separated items, each `key=value` or `@/path/to/file` (a
// properties file, read now; how secrets from a mounted Kubernetes Secret come in). Later
// settings win. INVALID_ARGUMENT when a file cannot be read or an item is malformed.
absl::StatusOr<KafkaSettings> LoadKafkaSettings(absl::string_view flag);

// True for setting names whose values are secrets (passwords, keys, tokens): they must never
// be logged or shown.
bool IsSecretSetting(absl::string_view name);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_KAFKA_CONFIG_H_
