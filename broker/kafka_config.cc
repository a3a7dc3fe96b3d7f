#include "broker/kafka_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kafka_sidecar::broker {

absl::StatusOr<KafkaSettings> ParseKafkaSettings(absl::string_view text) {
  KafkaSettings settings;
  if (absl::StripAsciiWhitespace(text).empty()) return settings;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka setting '", item, "' is not of the form key=value"));
    }
    absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
    if (key.empty()) {
      return absl::InvalidArgumentError("kafka setting with an empty key before '='");
    }
    settings.emplace_back(std::string(key), std::string(value));
  }
  return settings;
}

bool IsSecretSetting(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view marker : {"password", "secret", "token", ".key", "jaas"}) {
    if (absl::StrContains(lower, marker)) return true;
  }
  return false;
}

}  // namespace kafka_sidecar::broker
