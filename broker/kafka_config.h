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

// True for setting names whose values are secrets (passwords, keys, tokens): they must never
// be logged or shown.
bool IsSecretSetting(absl::string_view name);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_KAFKA_CONFIG_H_
