#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_SERVER_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_SERVER_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "broker/producer.h"
#include "broker/topic_creator.h"
#include "sidecar/common/clock.h"
#include "sidecar/common/metrics.h"
#include "sidecar/consume/subscription_registry.h"
#include "sidecar/rpc/kafka_sidecar_service.h"
#include "sidecar/server/config.h"
#include "sidecar/server/health.h"
#include "sidecar/server/http_server.h"
#include "sidecar/server/measuring_producer.h"

namespace kafka_sidecar::sidecar {

// The gRPC server: the KafkaSidecar service and the standard grpc.health.v1 service, on
// `config.listen`, with the subscriptions of the consume path. Start, then Shutdown once;
// thread-safe otherwise.
class SidecarServer {
 public:
  // What the server runs on. Everything must outlive the server; `topics` may be null.
  struct Deps {
    broker::Producer& producer;
    ConsumerFactory consumers;
    broker::TopicCreator* topics = nullptr;
    Clock& clock = Clock::Real();
  };

  // Binds and starts serving. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<SidecarServer>> Start(const SidecarConfig& config,
                                                              Deps deps);
  ~SidecarServer();

  // The bound TCP port (useful with port 0); 0 for a unix socket.
  int port() const { return port_; }
  // The bound port of --metrics_listen (0 when off) and of --health_listen (0 when off).
  int metrics_port() const { return http_ != nullptr ? http_->port() : 0; }
  int health_port() const { return health_port_; }
  ConsumeMetrics& consume_metrics() { return consume_metrics_; }
  ProduceMetrics& produce_metrics() { return produce_metrics_; }
  Health& health() { return health_; }
  // The /metrics page as it reads now.
  std::string MetricsPage();
  SubscriptionRegistry& subscriptions() { return subscriptions_; }

  // Graceful stop, bounded by config.shutdown_grace, plus the time to leave the groups (up to
  // 5 s) and config.shutdown_finish_timeout: readiness turns NOT_SERVING (liveness stays); no
  // new record is taken or sent; Kafka gets the grace to acknowledge what was accepted (the
  // rest fail with UNAVAILABLE) and apps get it to ack what is in flight; acked offsets are
  // committed, groups are left, every accepted record is answered, streams end with
  // UNAVAILABLE and the servers stop.
  void Shutdown();

 private:
  SidecarServer(const SidecarConfig& config, Deps deps);

  const SidecarConfig config_;
  ProduceMetrics produce_metrics_;
  MeasuringProducer producer_;
  ConsumeMetrics consume_metrics_;
  Health health_;
  SubscriptionRegistry subscriptions_;
  KafkaSidecarService service_;
  std::unique_ptr<grpc::Server> server_;
  // Serves only grpc.health.v1, on --health_listen.
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> health_server_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  int health_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_SERVER_H_
