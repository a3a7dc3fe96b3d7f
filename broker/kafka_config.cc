#include "broker/kafka_config.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kafka_sidecar::broker {
namespace {

// One `key=value`; `where` names it for errors ("item 2", "@/path line 3"). A malformed item
// is never quoted: it may be a piece of a secret (a value split at a comma, a PEM line).
absl::Status AddSetting(absl::string_view item, absl::string_view where, KafkaSettings& out) {
  item = absl::StripAsciiWhitespace(item);
  const size_t eq = item.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " is not of the form key=value (a value with a comma or several lines belongs "
               "in an @file)"));
  }
  absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
  absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has an empty key before '='"));
  }
  out.emplace_back(std::string(key), std::string(value));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KafkaSettings> ParseKafkaProperties(absl::string_view text,
                                                   absl::string_view source) {
  KafkaSettings settings;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    if (absl::Status s = AddSetting(line, absl::StrCat(source, " line ", number), settings);
        !s.ok()) {
      return s;
    }
  }
  return settings;
}

absl::StatusOr<KafkaSettings> LoadKafkaSettings(absl::string_view flag) {
  KafkaSettings settings;
  if (absl::StripAsciiWhitespace(flag).empty()) return settings;
  int number = 0;
  for (absl::string_view item : absl::StrSplit(flag, ',')) {
    item = absl::StripAsciiWhitespace(item);
    ++number;
    if (!absl::StartsWith(item, "@")) {
      if (absl::Status s = AddSetting(item, absl::StrCat("item ", number), settings); !s.ok()) {
        return s;
      }
      continue;
    }
    const std::string path(item.substr(1));
    std::error_code error;
    if (std::filesystem::exists(path, error) && !std::filesystem::is_regular_file(path, error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the properties file @", path, " is not a file (a folder? name the file "
                                                      "in it)"));
    }
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

bool LooksLikePropertyName(absl::string_view name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' ||
      !absl::StrContains(name, '.')) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '_') return false;
  }
  return true;
}

bool IsSecretSetting(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view marker : {"password", "secret", "token", ".key", "jaas"}) {
    if (absl::StrContains(lower, marker)) return true;
  }
  return false;
}

}  // namespace kafka_sidecar::broker
