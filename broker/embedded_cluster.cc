#include "broker/embedded_cluster.h"

#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/str_cat.h"
#include "broker/rdkafka_status.h"

namespace kafka_sidecar::broker {

absl::StatusOr<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Create(int brokers) {
  absl::StatusOr<RdKafkaConfPtr> conf = NewRdKafkaConf({
      {"client.id", "embedded-kafka"},
      // The host client never connects anywhere: silence its "no bootstrap.servers" warning.
      {"log_level", "3"},
  });
  if (!conf.ok()) return conf.status();
  absl::StatusOr<RdKafkaPtr> host = NewRdKafka(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!host.ok()) return host.status();
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host->get(), brokers);
  if (cluster == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("could not start an embedded Kafka cluster of ", brokers, " brokers"));
  }
  return std::unique_ptr<EmbeddedCluster>(new EmbeddedCluster(*std::move(host), cluster, brokers));
}

EmbeddedCluster::EmbeddedCluster(RdKafkaPtr host, rd_kafka_mock_cluster_s* cluster, int brokers)
    : host_(std::move(host)),
      cluster_(cluster),
      broker_count_(brokers),
      bootstrap_servers_(rd_kafka_mock_cluster_bootstraps(cluster)) {}

EmbeddedCluster::~EmbeddedCluster() { rd_kafka_mock_cluster_destroy(cluster_); }

absl::Status EmbeddedCluster::CreateTopic(absl::string_view topic, int partitions) {
  const std::string name(topic);
  const int replication = broker_count_ < 3 ? broker_count_ : 3;
  return RdKafkaStatus(rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, replication),
                       absl::StrCat("creating topic '", topic, "'"));
}

void EmbeddedCluster::SetTopicError(absl::string_view topic, int kafka_error) {
  rd_kafka_mock_topic_set_error(cluster_, std::string(topic).c_str(),
                                static_cast<rd_kafka_resp_err_t>(kafka_error));
}

void EmbeddedCluster::SetBrokerDown(int id) { rd_kafka_mock_broker_set_down(cluster_, id); }

void EmbeddedCluster::SetBrokerUp(int id) { rd_kafka_mock_broker_set_up(cluster_, id); }

void EmbeddedCluster::PushRequestErrors(int api_key, const std::vector<int>& kafka_errors) {
  std::vector<rd_kafka_resp_err_t> errors;
  errors.reserve(kafka_errors.size());
  for (int e : kafka_errors) errors.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(cluster_, static_cast<int16_t>(api_key), errors.size(),
                                          errors.data());
}

void EmbeddedCluster::DelayResponse(int id, int api_key, absl::Duration delay) {
  rd_kafka_mock_broker_push_request_error_rtts(
      cluster_, id, static_cast<int16_t>(api_key), 1, RD_KAFKA_RESP_ERR_NO_ERROR,
      static_cast<int>(absl::ToInt64Milliseconds(delay)));
}

}  // namespace kafka_sidecar::broker
