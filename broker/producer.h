#ifndef KAFKA_SIDECAR_BROKER_PRODUCER_H_
#define KAFKA_SIDECAR_BROKER_PRODUCER_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace kafka_sidecar::broker {

// A record header, borrowed from the caller.
struct HeaderView {
  absl::string_view key;
  absl::string_view value;
};

// A record to produce. Every field is borrowed: it must stay valid only for the duration of
// Producer::Produce, which copies what it keeps.
struct RecordView {
  absl::string_view topic;
  std::optional<absl::string_view> key;  // nullopt: a null key (not the same as empty)
  absl::string_view value;
  absl::Span<const HeaderView> headers;
  std::optional<int32_t> partition;  // nullopt: Kafka's partitioner picks one by key
};

// What Kafka said about one record: on success where it was written, otherwise why not.
struct DeliveryReport {
  absl::Status status;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Runs exactly once per produced record.
using DeliveryCallback = absl::AnyInvocable<void(const DeliveryReport& report) &&>;

// Receives the delivery reports of the records of one Producer::ProduceBatch call: one object
// for many records, instead of a DeliveryCallback (and its allocation) per record.
class BatchDeliverySink {
 public:
  // Runs exactly once for each record of the batch, with the record's index in the span given
  // to ProduceBatch: inline, before ProduceBatch returns, for a record rejected at once, and
  // otherwise later on a producer thread. Reports of different records of one batch may run
  // concurrently (an inline rejection while a producer thread reports an earlier record).
  virtual void OnDelivery(size_t index, const DeliveryReport& report) = 0;

 protected:
  ~BatchDeliverySink() = default;
};

// Writes records to Kafka. Thread-safe: any thread may call any method.
class Producer {
 public:
  virtual ~Producer() = default;

  // Hands `record` to Kafka. `done` runs exactly once: inline, before Produce returns, when the
  // record is rejected at once (INVALID_ARGUMENT for a record over the size limit, NOT_FOUND for
  // a partition the topic does not have, RESOURCE_EXHAUSTED when the local queue is full), and
  // otherwise later on a producer thread, with the partition and offset Kafka gave the record
  // or the reason it failed (NOT_FOUND for a missing topic, UNAVAILABLE when Kafka could not be
  // reached before the message timeout). Callers must not hold locks that `done` takes.
  virtual void Produce(const RecordView& record, DeliveryCallback done) = 0;

  // Hands every record of `records` to Kafka, in order, as Produce does one, and reports each
  // to `sink` (same outcomes, same threads). `sink` must stay valid until it has received every
  // report; with no records it receives none. Records may each name their own topic and
  // partition. The default calls Produce per record; implementations override it to save the
  // per-record callback.
  virtual void ProduceBatch(absl::Span<const RecordView> records, BatchDeliverySink& sink) {
    for (size_t i = 0; i < records.size(); ++i) {
      // Two words: AnyInvocable keeps them inline, with no allocation.
      Produce(records[i], [&sink, i](const DeliveryReport& report) { sink.OnDelivery(i, report); });
    }
  }

  // A caller hands over no more records until some of its own are answered (its backpressure
  // window is full): waiting for more records to fill a request (librdkafka's linger.ms) would
  // only delay the answers it waits for. Sends what is queued without that wait; returns at
  // once.
  virtual void SendNow() = 0;

  // Waits up to `timeout` for Kafka to acknowledge every record handed over so far. Records
  // still waiting then fail with UNAVAILABLE. When Drain returns, every DeliveryCallback of
  // those records has run. Returns DEADLINE_EXCEEDED when some had to be failed.
  virtual absl::Status Drain(absl::Duration timeout) = 0;

  // Asks a broker for cluster metadata, waiting up to `timeout`: OK when Kafka answers,
  // UNAVAILABLE (or the error Kafka gave) otherwise. For health checks.
  virtual absl::Status CheckReachable(absl::Duration timeout) = 0;
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_PRODUCER_H_
