#include "sidecar/config.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

absl::Status CheckRange(absl::string_view flag, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be between ", min, " and ", max, ", got ", value));
}

absl::Status CheckDurationMs(absl::string_view flag, absl::Duration value, int64_t max_ms) {
  return CheckRange(flag, absl::ToInt64Milliseconds(value), 0, max_ms);
}

}  // namespace

absl::Status ValidateListenAddress(const std::string& listen) {
  auto invalid = [&listen](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen='", listen, "': ", why,
                     "; expected host:port (for example 127.0.0.1:50051) or unix:/path"));
  };
  if (absl::StartsWith(listen, "unix:")) {
    if (!absl::StartsWith(listen, "unix:/")) return invalid("the unix socket path must be absolute");
    return absl::OkStatus();
  }
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalid("no host:port");
  absl::string_view host(listen.data(), colon);
  if (absl::StartsWith(host, "[") != absl::EndsWith(host, "]")) {
    return invalid("unbalanced brackets around the IPv6 host");
  }
  int port;
  if (!absl::SimpleAtoi(absl::string_view(listen).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return invalid("the port must be a number from 0 to 65535");
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const SidecarConfig& config) {
  if (absl::Status s = ValidateListenAddress(config.listen); !s.ok()) return s;
  if (config.brokers.empty()) {
    return absl::InvalidArgumentError(
        "--brokers is required: Kafka bootstrap servers (host:port,...), or 'embedded' for an "
        "in-memory cluster to try things with");
  }
  if (absl::Status s = CheckRange("max_pending_produces", config.max_pending_produces, 1, 1000000);
      !s.ok()) {
    return s;
  }
  constexpr int64_t kHourMs = 3600 * 1000;
  if (absl::Status s = CheckDurationMs("shutdown_grace_ms", config.shutdown_grace, kHourMs);
      !s.ok()) {
    return s;
  }
  if (config.brokers == kEmbeddedBrokers) {
    if (absl::Status s = CheckRange("embedded_brokers", config.embedded_brokers, 1, 16); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckRange("embedded_partitions", config.embedded_partitions, 1, 1000);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace kafka_sidecar::sidecar
