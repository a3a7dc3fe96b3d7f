#include "sidecar/server.h"

#include <glog/logging.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kafka_sidecar::sidecar {

SidecarServer::SidecarServer(const SidecarConfig& config, broker::Producer& producer)
    : config_(config), producer_(producer), service_(producer, config.max_pending_produces) {}

absl::StatusOr<std::unique_ptr<SidecarServer>> SidecarServer::Start(const SidecarConfig& config,
                                                                    broker::Producer& producer) {
  std::unique_ptr<SidecarServer> server(new SidecarServer(config, producer));
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
  LOG(INFO) << "[server] shutting down: no new records; Kafka gets " << config_.shutdown_grace
            << " to acknowledge the accepted ones";
  // Turns every service NOT_SERVING, for probes and load balancers.
  server_->GetHealthCheckService()->Shutdown();
  service_.BeginDrain();
  if (absl::Status drained = producer_.Drain(config_.shutdown_grace); !drained.ok()) {
    LOG(WARNING) << "[server] " << drained;
  }
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
