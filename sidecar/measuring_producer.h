#ifndef KAFKA_SIDECAR_SIDECAR_MEASURING_PRODUCER_H_
#define KAFKA_SIDECAR_SIDECAR_MEASURING_PRODUCER_H_

#include <utility>

#include "absl/time/clock.h"
#include "broker/producer.h"
#include "sidecar/metrics.h"

namespace kafka_sidecar::sidecar {

// A Producer decorator that counts every record's outcome and latency in ProduceMetrics.
// Thread-safe as the producer it wraps.
class MeasuringProducer final : public broker::Producer {
 public:
  MeasuringProducer(broker::Producer& inner, ProduceMetrics& metrics)
      : inner_(inner), metrics_(metrics) {}

  void Produce(const broker::RecordView& record, broker::DeliveryCallback done) override {
    inner_.Produce(record, [this, start = absl::Now(), done = std::move(done)](
                               const broker::DeliveryReport& report) mutable {
      metrics_.Record(report.status, absl::Now() - start);
      std::move(done)(report);
    });
  }
  absl::Status Drain(absl::Duration timeout) override { return inner_.Drain(timeout); }
  absl::Status CheckReachable(absl::Duration timeout) override {
    return inner_.CheckReachable(timeout);
  }

 private:
  broker::Producer& inner_;
  ProduceMetrics& metrics_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_MEASURING_PRODUCER_H_
