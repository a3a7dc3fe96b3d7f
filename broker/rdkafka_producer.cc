#include "broker/rdkafka_producer.h"

#include <glog/logging.h>

#include <array>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/rdkafka_status.h"

namespace kafka_sidecar::broker {
namespace {

// Turns librdkafka's outcome for one record into a report; on failure with a message a user can
// act on. `topic` is read only on failure. Success builds no string.
DeliveryReport MakeReport(rd_kafka_t* rk, rd_kafka_resp_err_t err, absl::string_view topic,
                          int32_t partition, int64_t offset) {
  DeliveryReport report;
  report.partition = partition;
  report.offset = offset;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return report;
  std::string context = partition < 0
                            ? absl::StrCat("topic '", topic, "'")
                            : absl::StrCat("topic '", topic, "' partition ", partition);
  // After a fatal error (an idempotent producer refused by the cluster, say for want of an
  // ACL) librdkafka fails every record, queued ones as purged: the fatal error is the cause.
  if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    char reason[512];
    const rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, reason, sizeof(reason));
    if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
      report.status = absl::Status(
          RdKafkaStatusCode(fatal),
          absl::StrCat(context, ": the producer stopped on a fatal error (",
                       rd_kafka_err2name(fatal), "): ", reason,
                       "; restart the sidecar once the cause is fixed"));
      return report;
    }
  }
  switch (err) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      if (partition < 0) context += " does not exist and the cluster did not create it";
      break;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      context += " does not exist";
      break;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      context += ": record is larger than message.max.bytes";
      break;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
      context += ": Kafka did not acknowledge the record within message.timeout.ms";
      break;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
      context += ": the sidecar is shutting down and Kafka had not acknowledged the record "
                 "(it may or may not have been written)";
      break;
    default:
      break;
  }
  report.status = RdKafkaStatus(err, context);
  return report;
}

// True on the delivery thread while it flushes for SendNow: the delivery callback ends that
// flush once the records handed over before SendNow are answered. Longer, and records handed
// over meanwhile go out at once too, a few to a request: a stream that keeps its window full
// would keep the flush running, and requests of a few records each cost more CPU
// (ProduceBatchStream, tools/bench.sh's batch run: 1.7-2.1 us a record when every flush ran
// until all was answered or 100 ms passed, 1.5-1.6 us with flushes of 1 ms). A fixed short
// flush is not enough: it may end before a busy machine has woken librdkafka's broker threads,
// and the records then wait out linger.ms.
thread_local bool t_sending_now = false;

// The answer to a record handed over once Drain has begun.
DeliveryReport ShuttingDown() {
  return {absl::UnavailableError("the sidecar is shutting down; the record was not produced")};
}

// What each record's per-message opaque points at: where its one report goes.
class Delivery {
 public:
  // Runs exactly once; may free this.
  virtual void Deliver(const DeliveryReport& report) = 0;

 protected:
  ~Delivery() = default;
};

// A record produced on its own, with its callback.
class CallbackDelivery final : public Delivery {
 public:
  explicit CallbackDelivery(DeliveryCallback done) : done_(std::move(done)) {}
  void Deliver(const DeliveryReport& report) override {
    std::move(done_)(report);
    delete this;
  }

 private:
  DeliveryCallback done_;
};

// The records of one ProduceBatch: one slot each, allocated together; the last report frees
// them.
class BatchDelivery {
 public:
  class Slot final : public Delivery {
   public:
    void Deliver(const DeliveryReport& report) override {
      // The sink may be gone once it has its last report; the batch lives until its own.
      BatchDelivery* batch = batch_;
      batch->sink_.OnDelivery(index_, report);
      if (batch->remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete batch;
    }

   private:
    friend class BatchDelivery;
    BatchDelivery* batch_ = nullptr;
    size_t index_ = 0;
  };

  BatchDelivery(size_t count, BatchDeliverySink& sink)
      : sink_(sink), remaining_(count), slots_(new Slot[count]) {
    for (size_t i = 0; i < count; ++i) {
      slots_[i].batch_ = this;
      slots_[i].index_ = i;
    }
  }
  Slot& slot(size_t index) { return slots_[index]; }

 private:
  BatchDeliverySink& sink_;
  std::atomic<size_t> remaining_;
  const std::unique_ptr<Slot[]> slots_;
};

}  // namespace

void RdKafkaProducer::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message,
                                 void* opaque) {
  const char* topic = message->err != RD_KAFKA_RESP_ERR_NO_ERROR && message->rkt != nullptr
                          ? rd_kafka_topic_name(message->rkt)
                          : "";
  static_cast<Delivery*>(message->_private)
      ->Deliver(MakeReport(rk, message->err, topic, message->partition, message->offset));
  auto* progress = static_cast<SendProgress*>(opaque);
  const uint64_t reported = progress->reported.fetch_add(1, std::memory_order_relaxed) + 1;
  if (t_sending_now && reported >= progress->send_mark.load(std::memory_order_relaxed)) {
    rd_kafka_yield(rk);  // ends the flush
  }
}

absl::StatusOr<std::unique_ptr<RdKafkaProducer>> RdKafkaProducer::Create(
    RdKafkaProducerOptions options) {
  KafkaSettings settings = {
      {"bootstrap.servers", options.bootstrap_servers},
      {"enable.idempotence", "true"},  // implies acks=all and ordered retries
      {"acks", "all"},
      {"client.id", "kafka-sidecar"},
  };
  settings.insert(settings.end(), options.settings.begin(), options.settings.end());
  absl::StatusOr<RdKafkaConfPtr> conf = NewRdKafkaConf(settings);
  if (!conf.ok()) return conf.status();
  auto progress = std::make_unique<SendProgress>();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &RdKafkaProducer::OnDelivery);
  rd_kafka_conf_set_opaque(conf->get(), progress.get());
  absl::StatusOr<RdKafkaPtr> rk = NewRdKafka(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!rk.ok()) return rk.status();
  return std::unique_ptr<RdKafkaProducer>(
      new RdKafkaProducer(*std::move(rk), std::move(progress), options.poll_interval));
}

RdKafkaProducer::RdKafkaProducer(RdKafkaPtr rk, std::unique_ptr<SendProgress> progress,
                                 absl::Duration poll_interval)
    : progress_(std::move(progress)),
      rk_(std::move(rk)),
      poll_interval_(poll_interval),
      reports_(rd_kafka_queue_get_main(rk_.get())),
      poller_([this] { PollLoop(); }) {}

RdKafkaProducer::~RdKafkaProducer() {
  Drain(absl::ZeroDuration()).IgnoreError();
  stop_ = true;
  rd_kafka_queue_yield(reports_.get());
  poller_.join();
  absl::MutexLock lock(&topics_mu_);
  for (const auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
  topics_.clear();
}

absl::Status RdKafkaProducer::CheckReachable(absl::Duration timeout) {
  return broker::CheckReachable(rk_.get(), timeout);
}

void RdKafkaProducer::PollLoop() {
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(poll_interval_));
  while (!stop_) {
    // A flush serves delivery reports as a poll does, and while it runs librdkafka's broker
    // threads (which it wakes) send without waiting for linger.ms.
    if (send_now_.exchange(false, std::memory_order_acq_rel) &&
        progress_->reported.load(std::memory_order_relaxed) <
            progress_->send_mark.load(std::memory_order_relaxed)) {
      t_sending_now = true;
      rd_kafka_flush(rk_.get(), timeout_ms);
      t_sending_now = false;
    } else {
      rd_kafka_poll(rk_.get(), timeout_ms);
    }
  }
}

void RdKafkaProducer::SendNow() {
  progress_->send_mark.store(progress_->enqueued.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
  if (!send_now_.exchange(true, std::memory_order_acq_rel)) rd_kafka_queue_yield(reports_.get());
}

RdKafkaProducer::TopicRef RdKafkaProducer::Topic(absl::string_view name) {
  {
    absl::ReaderMutexLock lock(&topics_mu_);
    auto it = topics_.find(name);
    if (it != topics_.end()) return {it->second};
  }
  absl::MutexLock lock(&topics_mu_);
  auto it = topics_.find(name);
  if (it != topics_.end()) return {it->second};
  // The name must be NUL-terminated for librdkafka.
  std::string key(name);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), key.c_str(), nullptr);
  if (rkt == nullptr) {
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    return {nullptr, false,
            err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : RD_KAFKA_RESP_ERR__INVALID_ARG};
  }
  if (topics_.size() >= kMaxCachedTopics) return {rkt, true};
  topics_.emplace(std::move(key), rkt);
  return {rkt};
}

void RdKafkaProducer::Release(const TopicRef& topic) {
  if (topic.owned) rd_kafka_topic_destroy(topic.rkt);
}

rd_kafka_resp_err_t RdKafkaProducer::Enqueue(const RecordView& record, rd_kafka_topic_t* rkt,
                                             void* opaque) {
  std::array<rd_kafka_vu_t, 7> vus;
  size_t n = 0;
  auto add = [&vus, &n](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    rd_kafka_vu_t& vu = vus[n++];
    vu.vtype = type;
    return vu;
  };
  add(RD_KAFKA_VTYPE_RKT).u.rkt = rkt;
  add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
  rd_kafka_vu_t& value = add(RD_KAFKA_VTYPE_VALUE);
  value.u.mem.ptr = const_cast<char*>(record.value.data());
  value.u.mem.size = record.value.size();
  if (record.key.has_value()) {
    rd_kafka_vu_t& key = add(RD_KAFKA_VTYPE_KEY);
    // An empty key is a real, empty key: librdkafka needs a non-null pointer for it.
    key.u.mem.ptr = const_cast<char*>(record.key->empty() ? "" : record.key->data());
    key.u.mem.size = record.key->size();
  }
  if (record.partition.has_value()) add(RD_KAFKA_VTYPE_PARTITION).u.i32 = *record.partition;
  // A headers list takes names with their length (VTYPE_HEADER would need NUL-terminated
  // copies). The message owns the list once produceva succeeds; on failure it stays ours.
  rd_kafka_headers_t* headers = nullptr;
  if (!record.headers.empty()) {
    headers = rd_kafka_headers_new(record.headers.size());
    for (const HeaderView& header : record.headers) {
      rd_kafka_header_add(headers, header.key.data(), static_cast<ssize_t>(header.key.size()),
                          header.value.data(), static_cast<ssize_t>(header.value.size()));
    }
    add(RD_KAFKA_VTYPE_HEADERS).u.headers = headers;
  }
  add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = opaque;
  rd_kafka_error_t* error = rd_kafka_produceva(rk_.get(), vus.data(), n);
  if (error == nullptr) {
    progress_->enqueued.fetch_add(1, std::memory_order_relaxed);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  const rd_kafka_resp_err_t err = rd_kafka_error_code(error);
  rd_kafka_error_destroy(error);
  if (headers != nullptr) rd_kafka_headers_destroy(headers);
  return err;
}

bool RdKafkaProducer::BeginHandover() {
  // Sequentially consistent, as Drain's store and load: either this sees closed_, or Drain
  // sees this handover and waits for it.
  handovers_.fetch_add(1);
  if (!closed_.load()) return true;
  EndHandover();
  return false;
}

void RdKafkaProducer::Produce(const RecordView& record, DeliveryCallback done) {
  if (!BeginHandover()) {
    std::move(done)(ShuttingDown());
    return;
  }
  const TopicRef topic = Topic(record.topic);
  const int32_t partition = record.partition.value_or(-1);
  if (topic.rkt == nullptr) {
    EndHandover();
    std::move(done)(MakeReport(rk_.get(), topic.err, record.topic, partition, -1));
    return;
  }
  auto* delivery = new CallbackDelivery(std::move(done));
  const rd_kafka_resp_err_t err = Enqueue(record, topic.rkt, static_cast<Delivery*>(delivery));
  Release(topic);
  EndHandover();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    delivery->Deliver(MakeReport(rk_.get(), err, record.topic, partition, -1));
  }
}

void RdKafkaProducer::ProduceBatch(absl::Span<const RecordView> records,
                                   BatchDeliverySink& sink) {
  if (records.empty()) return;
  if (!BeginHandover()) {
    const DeliveryReport refused = ShuttingDown();
    for (size_t i = 0; i < records.size(); ++i) sink.OnDelivery(i, refused);
    return;
  }
  // Freed by the last report, which may run before this loop ends: after handing over the
  // last record, touch nothing of it.
  auto* batch = new BatchDelivery(records.size(), sink);
  // Records of a batch mostly share a topic: look it up once per run of equal names.
  TopicRef topic;
  absl::string_view topic_name;
  for (size_t i = 0; i < records.size(); ++i) {
    const RecordView& record = records[i];
    if (i == 0 || record.topic != topic_name) {
      Release(topic);
      topic = Topic(record.topic);
      topic_name = record.topic;
    }
    BatchDelivery::Slot& slot = batch->slot(i);
    const rd_kafka_resp_err_t err =
        topic.rkt == nullptr ? topic.err
                             : Enqueue(record, topic.rkt, static_cast<Delivery*>(&slot));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      slot.Deliver(MakeReport(rk_.get(), err, record.topic, record.partition.value_or(-1), -1));
    }
  }
  Release(topic);
  EndHandover();
}

absl::Status RdKafkaProducer::Drain(absl::Duration timeout) {
  closed_.store(true);
  // A handover takes microseconds (librdkafka copies the record and never blocks on a full
  // queue without RD_KAFKA_MSG_F_BLOCK).
  while (handovers_.load() > 0) std::this_thread::yield();
  const rd_kafka_resp_err_t err =
      rd_kafka_flush(rk_.get(), static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  const int left = rd_kafka_outq_len(rk_.get());
  LOG(WARNING) << "[producer] " << left << " records not acknowledged by Kafka within "
               << timeout << "; failing them";
  // Purged records get their delivery reports on the next poll; serve them all. Purging on
  // every pass also fails records that arrived after the first purge.
  const int poll_ms = static_cast<int>(absl::ToInt64Milliseconds(poll_interval_));
  while (rd_kafka_outq_len(rk_.get()) > 0) {
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_.get(), poll_ms);
  }
  return absl::DeadlineExceededError(
      absl::StrCat(left, " records were not acknowledged by Kafka within ", absl::FormatDuration(timeout)));
}

}  // namespace kafka_sidecar::broker
