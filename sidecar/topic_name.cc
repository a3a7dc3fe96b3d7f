#include "sidecar/topic_name.h"

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

constexpr size_t kMaxTopicLength = 249;

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
  for (char c : topic) {
    if (!IsTopicChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": '", topic, "' has characters other than letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kafka_sidecar::sidecar
