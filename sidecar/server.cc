#include "sidecar/server.h"

#include <glog/logging.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {

namespace {

SubscriptionOptions SubscriptionDefaults(const SidecarConfig& config) {
  SubscriptionOptions options;
  options.commit_interval = config.commit_interval;
  options.max_buffered_records = static_cast<size_t>(config.max_buffered_records);
  options.linger = config.unsubscribe_linger;
  options.kafka_unavailable_timeout = config.kafka_unavailable_timeout;
  options.inactivity_timeout = config.client_inactivity_timeout;
  options.dispatch.ordering = config.ordering == "none"        ? Ordering::kNone
                              : config.ordering == "partition" ? Ordering::kPartition
                                                               : Ordering::kKey;
  return options;
}

}  // namespace

SidecarServer::SidecarServer(const SidecarConfig& config, Deps deps)
    : config_(config),
      producer_(deps.producer),
      subscriptions_(SubscriptionDefaults(config), std::move(deps.consumers), deps.topics,
                     deps.clock, consume_metrics_),
      service_(deps.producer, config.max_pending_produces, subscriptions_,
               static_cast<uint32_t>(config.max_in_flight_per_stream)) {}

absl::StatusOr<std::unique_ptr<SidecarServer>> SidecarServer::Start(const SidecarConfig& config,
                                                                    Deps deps) {
  std::unique_ptr<SidecarServer> server(new SidecarServer(config, std::move(deps)));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(&server->service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr ||
      (server->port_ == 0 && !absl::StartsWith(config.listen, "unix:"))) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on --listen=", config.listen,
                     " (address in use, or not an address of this host?)"));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

SidecarServer::~SidecarServer() { Shutdown(); }

void SidecarServer::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  const absl::Time start = absl::Now();
  LOG(INFO) << "[server] shutting down: no new records; " << config_.shutdown_grace
            << " for Kafka to acknowledge and apps to ack what is in flight";
  // Turns every service NOT_SERVING, for probes and load balancers.
  server_->GetHealthCheckService()->Shutdown();
  service_.BeginDrain();
  subscriptions_.BeginDrain();
  const absl::Time grace_end = start + config_.shutdown_grace;
  if (absl::Status drained = producer_.Drain(config_.shutdown_grace); !drained.ok()) {
    LOG(WARNING) << "[server] " << drained;
  }
  // Apps ack what is in flight until the grace ends; then commit, leave the groups, end the
  // consume streams.
  subscriptions_.CloseAll(std::max(grace_end - absl::Now(), absl::ZeroDuration()),
                          absl::UnavailableError("the sidecar is shutting down"));
  // Every accepted record now has its answer; give the answers time to reach the apps.
  const absl::Time deadline = absl::Now() + config_.shutdown_finish_timeout;
  if (!service_.WaitForStreams(deadline)) {
    LOG(WARNING) << "[server] some produce streams did not take their answers in time";
  }
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  LOG(INFO) << "[server] stopped after " << absl::Now() - start;
}

}  // namespace kafka_sidecar::sidecar
