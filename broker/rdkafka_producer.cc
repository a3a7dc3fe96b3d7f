#include "broker/rdkafka_producer.h"

#include <glog/logging.h>

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "broker/rdkafka_status.h"

namespace kafka_sidecar::broker {
namespace {

std::string RecordContext(absl::string_view topic, int32_t partition) {
  if (partition < 0) return absl::StrCat("topic '", topic, "'");
  return absl::StrCat("topic '", topic, "' partition ", partition);
}

// Turns librdkafka's outcome for one record into a report with a message a user can act on.
DeliveryReport MakeReport(rd_kafka_resp_err_t err, absl::string_view topic, int32_t partition,
                          int64_t offset) {
  DeliveryReport report;
  report.partition = partition;
  report.offset = offset;
  std::string context = RecordContext(topic, partition);
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

// Each record carries its callback as librdkafka's per-message opaque.
void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* done = static_cast<DeliveryCallback*>(message->_private);
  const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "";
  std::move (*done)(MakeReport(message->err, topic, message->partition, message->offset));
  delete done;
}

}  // namespace

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
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
  absl::StatusOr<RdKafkaPtr> rk = NewRdKafka(RD_KAFKA_PRODUCER, *std::move(conf));
  if (!rk.ok()) return rk.status();
  return std::unique_ptr<RdKafkaProducer>(
      new RdKafkaProducer(*std::move(rk), options.poll_interval));
}

RdKafkaProducer::RdKafkaProducer(RdKafkaPtr rk, absl::Duration poll_interval)
    : rk_(std::move(rk)), poll_interval_(poll_interval), poller_([this] { PollLoop(); }) {}

RdKafkaProducer::~RdKafkaProducer() {
  Drain(absl::ZeroDuration()).IgnoreError();
  stop_ = true;
  poller_.join();
}

absl::Status RdKafkaProducer::CheckReachable(absl::Duration timeout) {
  return broker::CheckReachable(rk_.get(), timeout);
}

void RdKafkaProducer::PollLoop() {
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(poll_interval_));
  while (!stop_) rd_kafka_poll(rk_.get(), timeout_ms);
}

void RdKafkaProducer::Produce(const RecordView& record, DeliveryCallback done) {
  absl::InlinedVector<rd_kafka_vu_t, 8> vus;
  auto add = [&vus](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    rd_kafka_vu_t& vu = vus.emplace_back();
    vu.vtype = type;
    return vu;
  };
  // The topic name must be NUL-terminated for librdkafka.
  const std::string topic(record.topic);
  add(RD_KAFKA_VTYPE_TOPIC).u.cstr = topic.c_str();
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
  // Header names must be NUL-terminated: copies live until produceva returns (librdkafka
  // copies headers). reserve() keeps their c_str() pointers stable.
  absl::InlinedVector<std::string, 4> header_names;
  header_names.reserve(record.headers.size());
  for (const HeaderView& header : record.headers) {
    rd_kafka_vu_t& vu = add(RD_KAFKA_VTYPE_HEADER);
    vu.u.header.name = header_names.emplace_back(header.key).c_str();
    vu.u.header.val = header.value.data();
    vu.u.header.size = static_cast<ssize_t>(header.value.size());
  }

  auto* opaque = new DeliveryCallback(std::move(done));
  add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = opaque;
  rd_kafka_error_t* error = rd_kafka_produceva(rk_.get(), vus.data(), vus.size());
  if (error != nullptr) {
    const rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    std::move (*opaque)(MakeReport(err, record.topic, record.partition.value_or(-1), -1));
    delete opaque;
  }
}

absl::Status RdKafkaProducer::Drain(absl::Duration timeout) {
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
