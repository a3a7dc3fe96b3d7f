#ifndef KAFKA_SIDECAR_TESTING_FAKE_PRODUCER_H_
#define KAFKA_SIDECAR_TESTING_FAKE_PRODUCER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/consumer.h"
#include "broker/producer.h"

namespace kafka_sidecar::testing {

// A Producer whose records wait until the test answers them: it keeps a copy of each record
// and its callback, in the order they came. Thread-safe.
class FakeProducer final : public broker::Producer {
 public:
  struct Record {
    std::string topic;
    std::optional<std::string> key;
    std::string value;
    std::vector<broker::Header> headers;
  };

  void Produce(const broker::RecordView& record, broker::DeliveryCallback done) override {
    Record copy{std::string(record.topic), std::nullopt, std::string(record.value), {}};
    if (record.key.has_value()) copy.key = std::string(*record.key);
    for (const broker::HeaderView& h : record.headers) {
      copy.headers.push_back({std::string(h.key), std::string(h.value)});
    }
    absl::MutexLock lock(&mu_);
    records_.push_back(std::move(copy));
    callbacks_.push_back(std::move(done));
  }
  void SendNow() override {}
  absl::Status Drain(absl::Duration) override { return absl::OkStatus(); }
  absl::Status CheckReachable(absl::Duration) override { return absl::OkStatus(); }

  // Every record produced so far, answered or not.
  std::vector<Record> records() {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  // Answers record `index` (in produce order) with `status`, at partition 0 and offset `index`.
  void Answer(size_t index, const absl::Status& status) {
    broker::DeliveryCallback done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(callbacks_.at(index));
    }
    std::move(done)(broker::DeliveryReport{status, 0, static_cast<int64_t>(index)});
  }

 private:
  absl::Mutex mu_;
  std::vector<Record> records_ ABSL_GUARDED_BY(mu_);
  std::vector<broker::DeliveryCallback> callbacks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_FAKE_PRODUCER_H_
