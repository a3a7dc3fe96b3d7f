#ifndef KAFKA_SIDECAR_TESTING_PROBES_H_
#define KAFKA_SIDECAR_TESTING_PROBES_H_

#include <string>
#include <utility>

#include "absl/time/time.h"

// What a kubelet or Prometheus asks a sidecar: its gRPC health service and its HTTP pages.

namespace kafka_sidecar::testing {

// Waits until the gRPC server at `target` says SERVING, or `timeout` passes.
bool WaitForServing(const std::string& target, absl::Duration timeout);

// Watches `service` of the health service at `target` until it reports `serving` (true:
// SERVING, false: anything else), or `timeout` passes (false).
bool WaitForHealth(const std::string& target, const std::string& service, bool serving,
                   absl::Duration timeout);

// GETs `path` from the HTTP server at 127.0.0.1:`port`: the status code and the body (code -1
// when there was no answer).
std::pair<int, std::string> HttpGet(int port, const std::string& path);

// The value of one series on a Prometheus text page (`series`: the name and its labels exactly
// as on the page, such as `kafka_sidecar_ready` or `kafka_sidecar_commits_total{result="failure"}`),
// or -1 when the page has none.
int64_t MetricValue(const std::string& page, const std::string& series);

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_PROBES_H_
