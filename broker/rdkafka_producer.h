#ifndef KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_
#define KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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
// Topic handles are kept per topic name (up to kMaxCachedTopics names), so a record costs no
// lookup of its topic under librdkafka's client lock.
class RdKafkaProducer final : public Producer {
 public:
  // Topic names whose handles are kept; records to further topics get a handle of their own.
  static constexpr size_t kMaxCachedTopics = 1024;

  // INVALID_ARGUMENT when librdkafka refuses a setting or the configuration.
  static absl::StatusOr<std::unique_ptr<RdKafkaProducer>> Create(RdKafkaProducerOptions options);

  // Fails whatever is still waiting (as Drain(0) would), then closes the client.
  ~RdKafkaProducer() override;

  void Produce(const RecordView& record, DeliveryCallback done) override;
  // One allocation for the whole batch rather than a callback per record.
  void ProduceBatch(absl::Span<const RecordView> records, BatchDeliverySink& sink) override;
  // Wakes the delivery thread, which flushes until the records handed over so far are answered
  // (or poll_interval passes): librdkafka sends what is queued without lingering only while a
  // flush runs, and only its broker threads, once they wake, take the records.
  void SendNow() override;
  // Records handed over once Drain has begun fail at once with UNAVAILABLE; a handover under
  // way when it begins is waited for, so none reaches librdkafka after the flush.
  absl::Status Drain(absl::Duration timeout) override;
  absl::Status CheckReachable(absl::Duration timeout) override;

 private:
  // A topic handle for one record: the cached one, or (past kMaxCachedTopics) one of its own
  // that Release destroys. Null when librdkafka refused the name (`err` says why).
  struct TopicRef {
    rd_kafka_topic_t* rkt = nullptr;
    bool owned = false;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  };

  // Counts of records, for SendNow's flush to know when it has done its work. Shared with the
  // delivery callback through librdkafka's opaque, so created before the client.
  struct SendProgress {
    std::atomic<uint64_t> enqueued{0};  // records librdkafka took
    std::atomic<uint64_t> reported{0};  // delivery reports served
    // `enqueued` when SendNow was last called: its flush ends once as many are reported.
    std::atomic<uint64_t> send_mark{0};
  };

  RdKafkaProducer(RdKafkaPtr rk, std::unique_ptr<SendProgress> progress,
                  absl::Duration poll_interval);
  void PollLoop();
  // librdkafka's delivery report callback; `opaque` is the producer's SendProgress.
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  TopicRef Topic(absl::string_view name);
  static void Release(const TopicRef& topic);
  // Starts a handover: false (and no handover) once Drain has begun.
  bool BeginHandover();
  void EndHandover() { handovers_.fetch_sub(1); }
  // Hands one record to librdkafka with `opaque` as its per-message opaque; NO_ERROR when
  // librdkafka took it (its delivery report comes later), else the immediate rejection.
  rd_kafka_resp_err_t Enqueue(const RecordView& record, rd_kafka_topic_t* rkt, void* opaque);

  const std::unique_ptr<SendProgress> progress_;  // outlives rk_: declared before it
  const RdKafkaPtr rk_;
  const absl::Duration poll_interval_;
  absl::Mutex topics_mu_;
  // Handles by topic name; destroyed with the producer.
  absl::flat_hash_map<std::string, rd_kafka_topic_t*> topics_ ABSL_GUARDED_BY(topics_mu_);
  // The client's main queue, where delivery reports arrive: SendNow yields it to wake poller_.
  const RdKafkaQueuePtr reports_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> send_now_{false};
  // Set when Drain begins: records handed over from then on fail at once with UNAVAILABLE.
  std::atomic<bool> closed_{false};
  // Produce and ProduceBatch calls under way. Drain sets closed_, then waits until none is, so
  // every record either sees closed_ or is in librdkafka's queue before the flush starts.
  std::atomic<int> handovers_{0};
  std::thread poller_;  // Serves delivery reports until stop_; flushes when send_now_.
};

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_RDKAFKA_PRODUCER_H_
