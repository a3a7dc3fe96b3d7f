#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_MEASURING_PRODUCER_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_MEASURING_PRODUCER_H_

#include <atomic>
#include <utility>

#include "absl/time/clock.h"
#include "broker/producer.h"
#include "sidecar/common/metrics.h"

namespace kafka_sidecar::sidecar {

// A Producer decorator that counts every record's outcome and latency (and every batch) in
// ProduceMetrics.
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
  void ProduceBatch(absl::Span<const broker::RecordView> records,
                    broker::BatchDeliverySink& sink) override {
    if (records.empty()) return;
    metrics_.batches++;
    inner_.ProduceBatch(records, *new MeasuredBatch(metrics_, sink, records.size()));
  }
  void SendNow() override { inner_.SendNow(); }
  absl::Status Drain(absl::Duration timeout) override { return inner_.Drain(timeout); }
  absl::Status CheckReachable(absl::Duration timeout) override {
    return inner_.CheckReachable(timeout);
  }

 private:
  // Counts each report of one batch, then hands it on; frees itself after the last.
  class MeasuredBatch final : public broker::BatchDeliverySink {
   public:
    MeasuredBatch(ProduceMetrics& metrics, broker::BatchDeliverySink& inner, size_t count)
        : metrics_(metrics), inner_(inner), remaining_(count) {}
    void OnDelivery(size_t index, const broker::DeliveryReport& report) override {
      metrics_.Record(report.status, absl::Now() - start_);
      inner_.OnDelivery(index, report);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

   private:
    ProduceMetrics& metrics_;
    broker::BatchDeliverySink& inner_;
    const absl::Time start_ = absl::Now();
    std::atomic<size_t> remaining_;
  };

  broker::Producer& inner_;
  ProduceMetrics& metrics_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_MEASURING_PRODUCER_H_
