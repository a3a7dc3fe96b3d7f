#ifndef KAFKA_SIDECAR_TESTING_COUNTING_PRODUCER_H_
#define KAFKA_SIDECAR_TESTING_COUNTING_PRODUCER_H_

#include <atomic>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/producer.h"

namespace kafka_sidecar::testing {

// A Producer decorator that counts the records waiting for Kafka (handed to Produce or
// ProduceBatch, report not yet given) and the most that ever waited at once. Thread-safe.
class CountingProducer final : public broker::Producer {
 public:
  explicit CountingProducer(std::unique_ptr<broker::Producer> inner) : inner_(std::move(inner)) {}

  void Produce(const broker::RecordView& record, broker::DeliveryCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      ++waiting_;
      ++produced_;
      if (waiting_ > max_waiting_) max_waiting_ = waiting_;
    }
    inner_->Produce(record, [this, done = std::move(done)](
                                const broker::DeliveryReport& report) mutable {
      {
        absl::MutexLock lock(&mu_);
        --waiting_;
      }
      std::move(done)(report);
    });
  }

  void ProduceBatch(absl::Span<const broker::RecordView> records,
                    broker::BatchDeliverySink& sink) override {
    if (records.empty()) return;
    {
      absl::MutexLock lock(&mu_);
      waiting_ += static_cast<int>(records.size());
      produced_ += static_cast<int>(records.size());
      if (waiting_ > max_waiting_) max_waiting_ = waiting_;
    }
    inner_->ProduceBatch(records, *new CountedBatch(*this, sink, records.size()));
  }

  void SendNow() override { inner_->SendNow(); }
  absl::Status Drain(absl::Duration timeout) override { return inner_->Drain(timeout); }
  absl::Status CheckReachable(absl::Duration timeout) override {
    return inner_->CheckReachable(timeout);
  }

  // Waits until exactly `n` records wait for Kafka, or `timeout` passes; true if they do.
  bool WaitForWaiting(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiting_ == n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  int waiting() {
    absl::MutexLock lock(&mu_);
    return waiting_;
  }
  int max_waiting() {
    absl::MutexLock lock(&mu_);
    return max_waiting_;
  }
  int produced() {
    absl::MutexLock lock(&mu_);
    return produced_;
  }

 private:
  // Counts each report of one batch off, then hands it on; frees itself after the last.
  class CountedBatch final : public broker::BatchDeliverySink {
   public:
    CountedBatch(CountingProducer& counter, broker::BatchDeliverySink& inner, size_t count)
        : counter_(counter), inner_(inner), remaining_(count) {}
    void OnDelivery(size_t index, const broker::DeliveryReport& report) override {
      {
        absl::MutexLock lock(&counter_.mu_);
        --counter_.waiting_;
      }
      inner_.OnDelivery(index, report);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

   private:
    CountingProducer& counter_;
    broker::BatchDeliverySink& inner_;
    std::atomic<size_t> remaining_;
  };

  const std::unique_ptr<broker::Producer> inner_;
  absl::Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int max_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int produced_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_COUNTING_PRODUCER_H_
