#include "sidecar/server/server.h"

#include <glog/logging.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/server/metrics_page.h"

namespace kafka_sidecar::sidecar {

namespace {

SubscriptionOptions SubscriptionDefaults(const SidecarConfig& config) {
  SubscriptionOptions options;
  options.commit_interval = config.commit_interval;
  const BufferBudget budget = SplitBufferBudget(config);
  options.max_buffered_records = budget.queue_records;
  options.max_buffered_bytes = budget.queue_bytes;
  options.dispatch.max_remembered_attempts = budget.queue_records;
  options.poll_timeout = config.consumer_poll_timeout;
  options.linger = config.unsubscribe_linger;
  options.kafka_unavailable_timeout = config.kafka_unavailable_timeout;
  options.inactivity_timeout = config.client_inactivity_timeout;
  options.dispatch.ordering = config.ordering;
  return options;
}

}  // namespace

SidecarServer::SidecarServer(const SidecarConfig& config, Deps deps)
    : config_(config),
      producer_(deps.producer, produce_metrics_),
      health_(producer_, config.health_check_interval),
      subscriptions_(SubscriptionDefaults(config), static_cast<size_t>(config.max_subscriptions),
                     std::move(deps.consumers), &deps.producer, deps.topics, deps.clock,
                     consume_metrics_),
      service_(producer_, config.max_pending_produces, produce_metrics_, subscriptions_,
               static_cast<uint32_t>(config.max_in_flight_per_stream)) {}

absl::StatusOr<std::unique_ptr<SidecarServer>> SidecarServer::Start(const SidecarConfig& config,
                                                                    Deps deps) {
  std::unique_ptr<SidecarServer> server(new SidecarServer(config, std::move(deps)));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &server->port_);
  // gRPC's default (4 MiB) would end a whole produce stream with RESOURCE_EXHAUSTED at the
  // first larger record. Sized from the producer's message.max.bytes with headroom, so that
  // any record Kafka could take fits and a record too large for Kafka is answered alone.
  const int64_t message_max_bytes = MessageMaxBytes(config.kafka_settings);
  const int max_receive = MaxReceiveMessageBytes(message_max_bytes);
  builder.SetMaxReceiveMessageSize(max_receive);
  builder.RegisterService(&server->service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr ||
      (server->port_ == 0 && !absl::StartsWith(config.listen, "unix:"))) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on --listen=", config.listen,
                     " (address in use, or not an address of this host?)"));
  }
  server->health_.Publish(server->server_->GetHealthCheckService());
  VLOG(1) << "[server] gRPC messages up to " << max_receive << " bytes (message.max.bytes "
          << message_max_bytes << ")";

  if (!config.health_listen.empty()) {
    // Only the health service (the builder adds it): kubelet probes reach the pod's address,
    // the API stays on loopback. Any other method is UNIMPLEMENTED, by a generic service that
    // also gives the server the callback queue the health service needs.
    grpc::ServerBuilder health_builder;
    health_builder.RegisterCallbackGenericService(&server->unimplemented_);
    health_builder.AddListeningPort(config.health_listen, grpc::InsecureServerCredentials(),
                                    &server->health_port_);
    server->health_server_ = health_builder.BuildAndStart();
    if (server->health_server_ == nullptr ||
        (server->health_port_ == 0 && !absl::StartsWith(config.health_listen, "unix:"))) {
      return absl::UnavailableError(absl::StrCat("could not listen on --health_listen=",
                                                 config.health_listen,
                                                 " (address in use, or not of this host?)"));
    }
    server->health_.Publish(server->health_server_->GetHealthCheckService());
    LOG(INFO) << "[server] serving grpc.health.v1 on " << config.health_listen << " (port "
              << server->health_port_ << ")";
  }
  if (!config.metrics_listen.empty()) {
    SidecarServer* self = server.get();
    absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
        config.metrics_listen,
        {[self] { return self->MetricsPage(); },
         [self] { return std::make_pair(self->health_.ready(), self->health_.Describe()); }});
    if (!http.ok()) {
      return absl::UnavailableError(
          absl::StrCat("--metrics_listen=", config.metrics_listen, ": ", http.status().message()));
    }
    server->http_ = *std::move(http);
    LOG(INFO) << "[server] serving /metrics, /healthz and /readyz on http://"
              << config.metrics_listen << " (port " << server->http_->port() << ")";
  }
  server->health_.Start();
  return server;
}

std::string SidecarServer::MetricsPage() {
  return RenderMetrics({produce_metrics_, consume_metrics_, subscriptions_.Stats(),
                        health_.ready(), health_.kafka_reachable()});
}

SidecarServer::~SidecarServer() { Shutdown(); }

void SidecarServer::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  const absl::Time start = absl::Now();
  LOG(INFO) << "[server] shutting down: no new records; " << config_.shutdown_grace
            << " for Kafka to acknowledge and apps to ack what is in flight";
  // Not ready from now on (readiness probes, load balancers); liveness stays SERVING. No more
  // Kafka checks: they would only delay the exit.
  health_.BeginDrain();
  health_.Stop();
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
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
  http_.reset();
  LOG(INFO) << "[server] stopped after " << absl::Now() - start;
}

}  // namespace kafka_sidecar::sidecar
