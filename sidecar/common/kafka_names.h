#ifndef KAFKA_SIDECAR_SIDECAR_COMMON_KAFKA_NAMES_H_
#define KAFKA_SIDECAR_SIDECAR_COMMON_KAFKA_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kafka_sidecar::sidecar {

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], and neither "." nor "..".
// INVALID_ARGUMENT naming `field` (for example "topic" or "subscribe.topics[2]") otherwise.
absl::Status ValidateTopicName(absl::string_view topic, absl::string_view field);

// Kafka's rule for group ids: 1 to 32,767 bytes (a protocol string's length is a 16-bit
// signed number). INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateGroupId(absl::string_view group, absl::string_view field);

// `name` (a topic or group from a request) as it may go into a log line or an error message:
// quotes, backslashes and unprintable bytes (newlines included) escaped (\n, \x00), so that a
// client cannot forge log lines, and at most about 300 characters.
std::string PrintableName(absl::string_view name);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_COMMON_KAFKA_NAMES_H_
