#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_METRICS_PAGE_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_METRICS_PAGE_H_

#include <string>
#include <vector>

#include "sidecar/common/metrics.h"
#include "sidecar/consume/subscription.h"

namespace kafka_sidecar::sidecar {

// Everything the /metrics page shows, read at one moment.
struct MetricsSnapshot {
  const ProduceMetrics& produce;
  const ConsumeMetrics& consume;
  std::vector<SubscriptionStats> subscriptions;
  bool ready = false;
  bool kafka_reachable = false;
};

// The page in Prometheus' text exposition format (version 0.0.4). Every name starts with
// `kafka_sidecar_`. No configuration value appears on it (secrets stay off it).
std::string RenderMetrics(const MetricsSnapshot& snapshot);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_METRICS_PAGE_H_
