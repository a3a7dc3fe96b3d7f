#include "broker/kafka_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kafka_sidecar::broker {
namespace {

// One `key=value`; `where` says where it came from, for errors. A malformed item may hold a
// secret: it is named only when it does not look like one.
absl::Status AddSetting(absl::string_view item, absl::string_view where, KafkaSettings& out) {
  item = absl::StripAsciiWhitespace(item);
  const size_t eq = item.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "kafka setting '", IsSecretSetting(item) ? "(hidden: it names a secret)" : item,
        "' is not of the form key=value"));
  }
  absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
  absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "kafka setting with an empty key before '='"));
  }
  out.emplace_back(std::string(key), std::string(value));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KafkaSettings> ParseKafkaSettings(absl::string_view text) {
  KafkaSettings settings;
  if (absl::StripAsciiWhitespace(text).empty()) return settings;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (absl::Status s = AddSetting(item, "", settings); !s.ok()) return s;
  }
  return settings;
}

absl::StatusOr<KafkaSettings> ParseKafkaProperties(absl::string_view text,
                                                   absl::string_view source) {
  KafkaSettings settings;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    if (absl::Status s = AddSetting(line, absl::StrCat(source, " line ", number, ": "), settings);
        !s.ok()) {
      return s;
    }
  }
  return settings;
}

absl::StatusOr<KafkaSettings> LoadKafkaSettings(absl::string_view flag) {
  KafkaSettings settings;
  if (absl::StripAsciiWhitespace(flag).empty()) return settings;
  for (absl::string_view item : absl::StrSplit(flag, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!absl::StartsWith(item, "@")) {
      if (absl::Status s = AddSetting(item, "", settings); !s.ok()) return s;
      continue;
    }
    const std::string path(item.substr(1));
    std::ifstream file(path);
    if (!file.is_open()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the properties file @", path, ": ", std::strerror(errno)));
    }
    std::stringstream text;
    text << file.rdbuf();
    absl::StatusOr<KafkaSettings> loaded =
        ParseKafkaProperties(text.str(), absl::StrCat("@", path));
    if (!loaded.ok()) return loaded.status();
    settings.insert(settings.end(), loaded->begin(), loaded->end());
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
