#ifndef KAFKA_SIDECAR_TESTING_SIDECAR_HARNESS_H_
#define KAFKA_SIDECAR_TESTING_SIDECAR_HARNESS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "broker/embedded_cluster.h"
#include "broker/kafka_config.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "sidecar/server/config.h"
#include "sidecar/server/server.h"
#include "testing/counting_producer.h"

namespace kafka_sidecar::testing {

// A whole sidecar in the test process: an embedded Kafka cluster (real Kafka protocol on
// loopback), the real librdkafka producer behind a CountingProducer, the real gRPC server on a
// free loopback port, and a client stub over a real TCP channel.
class SidecarHarness {
 public:
  struct Options {
    int brokers = 3;
    // Extra librdkafka settings for the sidecar's producer.
    broker::KafkaSettings kafka_settings;
    // Extra librdkafka settings for the sidecar's consumers, after the test defaults (short
    // session timeout, 10 ms fetch wait) and kafka_settings.
    broker::KafkaSettings consumer_settings;
    int max_pending_produces = 1000;
    absl::Duration shutdown_grace = absl::Seconds(5);
    // The rest of the sidecar's configuration; listen, metrics_listen (a free port) and
    // brokers are set by the harness.
    sidecar::SidecarConfig config;
    // The sidecar's time source; null for the real clock.
    sidecar::Clock* clock = nullptr;
  };

  static absl::StatusOr<std::unique_ptr<SidecarHarness>> Start(Options options);
  ~SidecarHarness();

  broker::EmbeddedCluster& cluster() { return *cluster_; }
  CountingProducer& producer() { return *producer_; }
  sidecar::ConsumeMetrics& consume_metrics() { return server_->consume_metrics(); }
  sidecar::SidecarServer& server() { return *server_; }
  kafka_sidecar::v1::KafkaSidecar::Stub& stub() { return *stub_; }
  const std::string& bootstrap() const { return cluster_->bootstrap_servers(); }
  std::string target() const;
  // host:port of the /metrics, /healthz and /readyz server.
  std::string metrics_address() const;

  // Takes every broker down, or brings every broker back.
  void SetAllBrokersDown();
  void SetAllBrokersUp();

 private:
  SidecarHarness() = default;

  std::unique_ptr<broker::EmbeddedCluster> cluster_;
  std::unique_ptr<CountingProducer> producer_;
  std::unique_ptr<sidecar::SidecarServer> server_;
  std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> stub_;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_SIDECAR_HARNESS_H_
