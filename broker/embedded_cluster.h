#ifndef KAFKA_SIDECAR_BROKER_EMBEDDED_CLUSTER_H_
#define KAFKA_SIDECAR_BROKER_EMBEDDED_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/rdkafka_handle.h"

struct rd_kafka_mock_cluster_s;

namespace kafka_sidecar::broker {

// An in-memory Kafka cluster: librdkafka's mock brokers, listening on loopback TCP and
// speaking the Kafka protocol, so any Kafka client can use it. For trying the sidecar and for
// tests only: nothing is persisted. Thread-safe.
class EmbeddedCluster {
 public:
  // Starts `brokers` brokers on loopback. UNAVAILABLE when librdkafka cannot start them.
  static absl::StatusOr<std::unique_ptr<EmbeddedCluster>> Create(int brokers);
  ~EmbeddedCluster();

  // The bootstrap list, `host:port,host:port,...`.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int broker_count() const { return broker_count_; }

  // Creates `topic` with `partitions` partitions. ALREADY_EXISTS when it exists.
  absl::Status CreateTopic(absl::string_view topic, int partitions);

  // Makes the cluster answer requests about `topic` with Kafka error code `kafka_error`
  // (0 clears it): UNKNOWN_TOPIC_OR_PART (3) makes the topic look absent and uncreatable.
  void SetTopicError(absl::string_view topic, int kafka_error);

  // Takes broker `id` (1-based) down: its connections close and it refuses new ones.
  void SetBrokerDown(int id);
  void SetBrokerUp(int id);

  // Makes the next requests of Kafka API `api_key` (for example 8, OffsetCommit) fail with the
  // given Kafka error codes, one per request.
  void PushRequestErrors(int api_key, const std::vector<int>& kafka_errors);
  // Makes broker `id` answer its next request of Kafka API `api_key` (for example 14,
  // SyncGroup) only after `delay`, successfully.
  void DelayResponse(int id, int api_key, absl::Duration delay);

 private:
  EmbeddedCluster(RdKafkaPtr host, rd_kafka_mock_cluster_s* cluster, int brokers);

  // The mock cluster lives inside a librdkafka client instance, which only hosts it.
  RdKafkaPtr host_;
  rd_kafka_mock_cluster_s* cluster_;  // owned; destroyed before host_
  const int broker_count_;
  std::string bootstrap_servers_;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_EMBEDDED_CLUSTER_H_
