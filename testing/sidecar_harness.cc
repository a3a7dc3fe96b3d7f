#include "testing/sidecar_harness.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/rdkafka_producer.h"
#include "sidecar/server/consumer_factory.h"

namespace kafka_sidecar::testing {

absl::StatusOr<std::unique_ptr<SidecarHarness>> SidecarHarness::Start(Options options) {
  std::unique_ptr<SidecarHarness> harness(new SidecarHarness());
  absl::StatusOr<std::unique_ptr<broker::EmbeddedCluster>> cluster =
      broker::EmbeddedCluster::Create(options.brokers);
  if (!cluster.ok()) return cluster.status();
  harness->cluster_ = *std::move(cluster);

  broker::RdKafkaProducerOptions producer_options;
  producer_options.bootstrap_servers = harness->cluster_->bootstrap_servers();
  producer_options.settings = options.kafka_settings;
  absl::StatusOr<std::unique_ptr<broker::RdKafkaProducer>> producer =
      broker::RdKafkaProducer::Create(std::move(producer_options));
  if (!producer.ok()) return producer.status();
  harness->producer_ = std::make_unique<CountingProducer>(*std::move(producer));

  sidecar::SidecarConfig config = options.config;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  config.brokers = harness->cluster_->bootstrap_servers();
  // What the producer runs with, as main.cc gives it (the server sizes gRPC's message limit
  // from message.max.bytes).
  config.kafka_settings.insert(config.kafka_settings.begin(), options.kafka_settings.begin(),
                               options.kafka_settings.end());
  config.max_pending_produces = options.max_pending_produces;
  config.shutdown_grace = options.shutdown_grace;
  if (absl::Status valid = sidecar::ValidateConfig(config); !valid.ok()) return valid;

  broker::KafkaSettings consumer_settings = {
      {"session.timeout.ms", "6000"},
      {"heartbeat.interval.ms", "500"},
      {"fetch.wait.max.ms", "10"},
  };
  consumer_settings.insert(consumer_settings.end(), options.kafka_settings.begin(),
                           options.kafka_settings.end());
  consumer_settings.insert(consumer_settings.end(), options.consumer_settings.begin(),
                           options.consumer_settings.end());
  sidecar::ConsumerFactory consumers =
      sidecar::RdKafkaConsumerFactory(config, config.brokers, consumer_settings);
  absl::StatusOr<std::unique_ptr<sidecar::SidecarServer>> server =
      sidecar::SidecarServer::Start(
          config, {*harness->producer_, consumers, nullptr,
                   options.clock != nullptr ? *options.clock : sidecar::Clock::Real()});
  if (!server.ok()) return server.status();
  harness->server_ = *std::move(server);

  harness->stub_ = kafka_sidecar::v1::KafkaSidecar::NewStub(
      grpc::CreateChannel(harness->target(), grpc::InsecureChannelCredentials()));
  return harness;
}

SidecarHarness::~SidecarHarness() {
  // The server drains into the producer, which needs the cluster: stop in that order.
  server_.reset();
  producer_.reset();
  cluster_.reset();
}

std::string SidecarHarness::target() const {
  return absl::StrCat("127.0.0.1:", server_->port());
}

std::string SidecarHarness::metrics_address() const {
  return absl::StrCat("127.0.0.1:", server_->metrics_port());
}

void SidecarHarness::SetAllBrokersDown() {
  for (int id = 1; id <= cluster_->broker_count(); ++id) cluster_->SetBrokerDown(id);
}

void SidecarHarness::SetAllBrokersUp() {
  for (int id = 1; id <= cluster_->broker_count(); ++id) cluster_->SetBrokerUp(id);
}

}  // namespace kafka_sidecar::testing
