#include "sidecar/server/config.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {
namespace {

// One numeric flag and the values it accepts.
struct Range {
  absl::string_view flag;
  int64_t value;
  int64_t min;
  int64_t max;
};

constexpr int64_t kHourMs = 3600 * 1000;

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

absl::Status ValidateGroupInstanceId(const std::string& id) {
  // Kafka's rule for ids, with room for the "-N" a second membership of one group gets.
  constexpr size_t kMaxLength = 200;
  const bool legal = std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
  });
  if (id.size() > kMaxLength || !legal || id == "." || id == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--group_instance_id='", id, "': use at most ", kMaxLength,
        " letters, digits, '.', '_' or '-' (for example the pod name), or leave it empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateListenAddress(const std::string& listen, absl::string_view flag,
                                   bool unix_ok) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "='", listen, "': ", why, "; expected host:port (for example ",
                     "127.0.0.1:50051)", unix_ok ? " or unix:/path" : ""));
  };
  if (unix_ok && absl::StartsWith(listen, "unix:")) {
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

bool IsLocalAddress(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:")) return true;
  absl::string_view host(listen.data(), std::min(listen.rfind(':'), listen.size()));
  return host == "localhost" || host == "[::1]" || absl::StartsWith(host, "127.");
}

absl::string_view AssignmentStrategyName(AssignmentStrategy strategy) {
  switch (strategy) {
    case AssignmentStrategy::kCooperativeSticky:
      return "cooperative-sticky";
    case AssignmentStrategy::kRange:
      return "range";
    case AssignmentStrategy::kRoundRobin:
      return "roundrobin";
  }
  return "cooperative-sticky";
}

absl::StatusOr<AssignmentStrategy> ParseAssignmentStrategy(absl::string_view name) {
  for (AssignmentStrategy strategy :
       {AssignmentStrategy::kCooperativeSticky, AssignmentStrategy::kRange,
        AssignmentStrategy::kRoundRobin}) {
    if (name == AssignmentStrategyName(strategy)) return strategy;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--assignment_strategy must be cooperative-sticky, range or roundrobin, got '", name, "'"));
}

absl::string_view OrderingName(Ordering ordering) {
  switch (ordering) {
    case Ordering::kKey:
      return "key";
    case Ordering::kPartition:
      return "partition";
    case Ordering::kNone:
      return "none";
  }
  return "key";
}

absl::StatusOr<Ordering> ParseOrdering(absl::string_view name) {
  for (Ordering ordering : {Ordering::kKey, Ordering::kPartition, Ordering::kNone}) {
    if (name == OrderingName(ordering)) return ordering;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--ordering must be key, partition or none, got '", name, "'"));
}

BufferBudget SplitBufferBudget(const SidecarConfig& config) {
  BufferBudget budget;
  budget.queue_records = static_cast<size_t>(config.max_buffered_records);
  budget.queue_bytes = static_cast<size_t>(config.max_buffered_mib) << 20;
  budget.prefetch_records = std::max(config.max_buffered_records / 2, 1000);
  budget.prefetch_kbytes = std::max(config.max_buffered_mib * 1024 / 2, 1024);
  return budget;
}

absl::Status ValidateConfig(const SidecarConfig& config) {
  if (absl::Status s = ValidateListenAddress(config.listen); !s.ok()) return s;
  if (!config.allow_remote && !IsLocalAddress(config.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen='", config.listen,
        "' is not a loopback address: the API has no authentication, so anyone who can reach "
        "it could produce and consume. Add --allow_remote to mean it, or listen on "
        "127.0.0.1 (apps in the pod reach it on localhost)"));
  }
  if (!config.health_listen.empty()) {
    if (absl::Status s = ValidateListenAddress(config.health_listen, "health_listen"); !s.ok()) {
      return s;
    }
  }
  if (!config.metrics_listen.empty()) {
    if (absl::Status s = ValidateListenAddress(config.metrics_listen, "metrics_listen",
                                               /*unix_ok=*/false);
        !s.ok()) {
      return s;
    }
  }
  if (config.brokers.empty()) {
    return absl::InvalidArgumentError(
        "--brokers is required: Kafka bootstrap servers (host:port,...), or 'embedded' for an "
        "in-memory cluster to try things with");
  }
  if (absl::Status s = ValidateGroupInstanceId(config.group_instance_id); !s.ok()) return s;
  for (const auto& [name, value] : config.kafka_settings) {
    if (name == "group.instance.id") {
      // Each membership needs an id of its own; the flag gives them one.
      return absl::InvalidArgumentError(
          "--kafka_config: set group.instance.id with --group_instance_id instead");
    }
    if (name == "partition.assignment.strategy") {
      // The sidecar reads the strategy to know how it leaves and what to say when a group
      // refuses it: one place sets it.
      return absl::InvalidArgumentError(
          "--kafka_config: set partition.assignment.strategy with --assignment_strategy "
          "instead");
    }
  }
  const bool embedded = config.brokers == kEmbeddedBrokers;
  const Range ranges[] = {
      {"max_pending_produces", config.max_pending_produces, 1, 1000000},
      {"max_in_flight_per_stream", config.max_in_flight_per_stream, 1, 1000000},
      {"max_buffered_records", config.max_buffered_records, 1, 10000000},
      {"max_buffered_mib", config.max_buffered_mib, 1, 65536},
      {"max_subscriptions", config.max_subscriptions, 1, 10000},
      {"commit_interval_ms", Ms(config.commit_interval), 1, kHourMs},
      {"unsubscribe_linger_ms", Ms(config.unsubscribe_linger), 0, kHourMs},
      {"kafka_unavailable_timeout_ms", Ms(config.kafka_unavailable_timeout), 1, 24 * kHourMs},
      {"client_inactivity_timeout_ms", Ms(config.client_inactivity_timeout), 1, 24 * kHourMs},
      {"shutdown_grace_ms", Ms(config.shutdown_grace), 0, kHourMs},
      {"health_check_interval_ms", Ms(config.health_check_interval), 100, kHourMs},
      // Checked only where they apply.
      {"embedded_brokers", embedded ? config.embedded_brokers : 1, 1, 16},
      {"embedded_partitions", embedded ? config.embedded_partitions : 1, 1, 1000},
  };
  for (const Range& r : ranges) {
    if (r.value < r.min || r.value > r.max) {
      return absl::InvalidArgumentError(absl::StrCat("--", r.flag, " must be between ", r.min,
                                                     " and ", r.max, ", got ", r.value));
    }
  }
  return absl::OkStatus();
}

int64_t MessageMaxBytes(const broker::KafkaSettings& kafka_settings) {
  constexpr int64_t kLibrdkafkaDefault = 1000000;
  int64_t value = kLibrdkafkaDefault;
  for (const auto& [name, setting] : kafka_settings) {
    if (name != "message.max.bytes") continue;
    int64_t parsed;
    value = absl::SimpleAtoi(setting, &parsed) && parsed > 0 ? parsed : kLibrdkafkaDefault;
  }
  return value;
}

int MaxReceiveMessageBytes(int64_t message_max_bytes) {
  constexpr int64_t kMiB = 1 << 20;
  constexpr int64_t kFloor = 16 * kMiB;
  constexpr int64_t kGrpcMax = std::numeric_limits<int>::max();
  return static_cast<int>(std::clamp(2 * message_max_bytes + kMiB, kFloor, kGrpcMax));
}

}  // namespace kafka_sidecar::sidecar
