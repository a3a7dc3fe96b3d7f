#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "broker/producer.h"
#include "sidecar/config.h"
#include "sidecar/kafka_sidecar_service.h"

namespace kafka_sidecar::sidecar {

// The gRPC server: the KafkaSidecar service and the standard grpc.health.v1 service, on
// `config.listen`. Start, then Shutdown once; thread-safe otherwise.
class SidecarServer {
 public:
  // Binds and starts serving. UNAVAILABLE when the address cannot be bound. `producer` must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<SidecarServer>> Start(const SidecarConfig& config,
                                                              broker::Producer& producer);
  ~SidecarServer();

  // The bound TCP port (useful with port 0); 0 for a unix socket.
  int port() const { return port_; }

  // Graceful stop, bounded by config.shutdown_grace plus config.shutdown_finish_timeout:
  // health turns NOT_SERVING, no new record is taken, Kafka gets the grace to acknowledge what
  // was accepted (the rest fail with UNAVAILABLE), every accepted record is answered, streams
  // end with UNAVAILABLE and the server stops.
  void Shutdown();

 private:
  SidecarServer(const SidecarConfig& config, broker::Producer& producer);

  const SidecarConfig config_;
  broker::Producer& producer_;
  KafkaSidecarService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_H_
