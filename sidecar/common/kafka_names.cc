#include "sidecar/common/kafka_names.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

constexpr size_t kMaxTopicLength = 249;
constexpr size_t kMaxGroupIdLength = 32767;
constexpr size_t kMaxPrintedLength = 300;

bool IsTopicChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

}  // namespace

absl::Status ValidateTopicName(absl::string_view topic, absl::string_view field) {
  if (topic.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (topic.size() > kMaxTopicLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxTopicLength, " characters"));
  }
  if (topic == "." || topic == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", topic, "' is not a topic name Kafka allows"));
  }
  for (char c : topic) {
    if (!IsTopicChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": '", PrintableName(topic),
                       "' has characters other than letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateGroupId(absl::string_view group, absl::string_view field) {
  if (group.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (group.size() > kMaxGroupIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", group.size(),
                                                   " bytes; Kafka takes at most ",
                                                   kMaxGroupIdLength));
  }
  return absl::OkStatus();
}

std::string PrintableName(absl::string_view name) {
  if (name.size() <= kMaxPrintedLength) return absl::CHexEscape(name);
  return absl::StrCat(absl::CHexEscape(name.substr(0, kMaxPrintedLength)), "... (", name.size(),
                      " bytes)");
}

}  // namespace kafka_sidecar::sidecar
