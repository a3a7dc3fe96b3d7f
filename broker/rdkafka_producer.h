#ifndef KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_
#define KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/kafka_config.h"
#include "broker/producer.h"
#include "broker/rdkafka_handle.h"

namespace kafka_sidecar::broker {

struct RdKafkaProducerOptions {
  std::string bootstrap_servers;
  // Extra librdkafka settings (--kafka_config), applied after the defaults below.
  KafkaSettings settings;
  // How long the delivery thread blocks in one rd_kafka_poll; bounds how long closing waits.
  absl::Duration poll_interval = absl::Milliseconds(100);
};

// Producer on librdkafka: idempotent, acks=all. Delivery reports are served by one thread that
// owns the polling of the client; callbacks run there (or inline for immediate rejections).
class RdKafkaProducer final : public Producer {
 public:
  // INVALID_ARGUMENT when librdkafka refuses a setting or the configuration.
  static absl::StatusOr<std::unique_ptr<RdKafkaProducer>> Create(RdKafkaProducerOptions options);

  // Fails whatever is still waiting (as Drain(0) would), then closes the client.
  ~RdKafkaProducer() override;

  void Produce(const RecordView& record, DeliveryCallback done) override;
  absl::Status Drain(absl::Duration timeout) override;
  absl::Status CheckReachable(absl::Duration timeout) override;

 private:
  RdKafkaProducer(RdKafkaPtr rk, absl::Duration poll_interval);
  void PollLoop();

  const RdKafkaPtr rk_;
  const absl::Duration poll_interval_;
  std::atomic<bool> stop_{false};
  std::thread poller_;  // Serves delivery reports until stop_.
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_
