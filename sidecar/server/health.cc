#include "sidecar/server/health.h"

#include <glog/logging.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {

Health::Health(broker::Producer& producer, absl::Duration interval)
    : producer_(producer), interval_(interval) {}

Health::~Health() { Stop(); }

void Health::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (checker_.joinable()) checker_.join();
}

void Health::Publish(grpc::HealthCheckServiceInterface* service) {
  absl::MutexLock lock(&mu_);
  services_.push_back(service);
  PublishLocked();
}

void Health::Start() { checker_ = std::thread([this] { Run(); }); }

void Health::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  PublishLocked();
}

bool Health::ready() const {
  absl::MutexLock lock(&mu_);
  return kafka_.ok() && !draining_;
}

bool Health::kafka_reachable() const {
  absl::MutexLock lock(&mu_);
  return kafka_.ok();
}

std::string Health::Describe() const {
  absl::MutexLock lock(&mu_);
  if (draining_) return "draining: the sidecar is shutting down";
  if (!kafka_.ok()) return absl::StrCat("Kafka unreachable: ", kafka_.message());
  return "ready";
}

void Health::PublishLocked() {
  const bool ready = kafka_.ok() && !draining_;
  for (grpc::HealthCheckServiceInterface* service : services_) {
    service->SetServingStatus("", ready);
    service->SetServingStatus("kafka_sidecar.v1.KafkaSidecar", ready);
    service->SetServingStatus(kLiveness, true);
  }
}

void Health::Run() {
  const absl::Duration timeout =
      std::clamp(interval_ / 2, absl::Milliseconds(100), absl::Seconds(5));
  bool first = true;
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    mu_.Unlock();
    absl::Status reachable = producer_.CheckReachable(timeout);
    mu_.Lock();
    if (stop_) break;  // the services may be gone
    const bool changed = reachable.ok() != kafka_.ok();
    if (changed || first) {
      if (reachable.ok()) {
        LOG(INFO) << "[health] Kafka is reachable: SERVING";
      } else {
        LOG(WARNING) << "[health] " << reachable << ": NOT_SERVING until Kafka answers";
      }
    }
    first = false;
    kafka_ = reachable;
    if (changed) PublishLocked();
    // Waits for the next check, or for the stop.
    mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
  }
}

}  // namespace kafka_sidecar::sidecar
