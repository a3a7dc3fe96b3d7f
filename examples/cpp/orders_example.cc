// orders_example: an app that produces and consumes orders through kafka-sidecar, in plain
// gRPC. The C++ twin of examples/python/orders_example.py: same records, same output lines.
//
// It shows the patterns an app needs, with no Kafka client library:
//
//   1. ProduceBatchStream (the fast path, the default): write records in batches of
//      --batch_size on one stream; each batch gets one result (matched by batch_id) with one
//      answer per record, in the batch's order: its partition and offset, or an error for that
//      record alone. Or, with --produce=stream, ProduceStream: one record a message, one answer
//      per record (matched by request_id). Either way the app keeps at most --max_pending
//      records unanswered, and the sidecar stops reading when it holds --max_pending_produces,
//      so gRPC flow control slows a fast app down.
//   2. Consume: subscribe (group, topics, max_in_flight), receive RecordBatches, process each
//      record and ack it by delivery_id. An offset is committed only once it is acked.
//   3. Nack, with the subscription's retry and dead-letter policies: a record that failed for
//      a passing reason is given back and comes again after a backoff, with delivery_attempt
//      one higher; the sidecar keeps its key's later records back until then (the app gives
//      back only those it had received already), so the key stays in order. A record that can
//      never be processed ("poison") is nacked with dead_letter and a reason: the sidecar
//      writes it to <topic>.dead-letter with dlq.* headers and commits past it, so it does
//      not block its key. The app then reads the dead letters back on a second Consume stream.
//
//   bazel run //examples/cpp:orders_example -- --target=localhost:50051 --count=10
//
// See docs/app-guide.md.

#include <gflags/gflags.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/kafka_sidecar.grpc.pb.h"

DEFINE_string(target, "localhost:50051", "the sidecar: host:port or unix:/path");
DEFINE_string(topic, "orders", "the topic to produce to and consume from");
DEFINE_string(group, "orders-example", "the Kafka consumer group");
DEFINE_int32(count, 10, "records to produce and consume");
DEFINE_string(produce, "batches",
              "how to produce: batches (ProduceBatchStream, --batch_size records a message: "
              "the fast path) or stream (ProduceStream, one record a message)");
DEFINE_int32(batch_size, 5, "with --produce=batches: records per ProduceBatch");
DEFINE_int32(max_pending, 100,
             "records the app sends before it waits for their answers");
DEFINE_int32(max_in_flight, 100, "unacked records the sidecar may send the Consume stream");
DEFINE_double(ready_timeout_s, 30, "how long to wait for the sidecar to accept connections");
DEFINE_double(timeout_s, 60, "deadline of each call (producing; consuming all records)");

namespace {

using kafka_sidecar::v1::ConsumeRequest;
using kafka_sidecar::v1::ConsumeResponse;
using kafka_sidecar::v1::KafkaSidecar;
using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceBatchResult;
using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using kafka_sidecar::v1::Record;

// The consume subscription's policies. A nacked record comes again after kMinBackoffMs,
// doubling with each further nack up to kMaxBackoffMs. A record nacked on its kMaxAttempts-th
// delivery goes to the dead-letter topic instead of coming again.
constexpr uint32_t kMinBackoffMs = 200;
constexpr uint32_t kMaxBackoffMs = 2000;
constexpr uint32_t kMaxAttempts = 5;

// Where the sidecar writes the records of `topic` that are given up on.
std::string DeadLetterTopic(const std::string& topic) { return topic + ".dead-letter"; }

std::chrono::system_clock::time_point DeadlineIn(double seconds) {
  return absl::ToChronoTime(absl::Now() + absl::Seconds(seconds));
}

// The name of a grpc::StatusCode value, as Error.code carries it. gRPC's codes are the
// canonical codes, which Abseil names.
std::string CodeName(int code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat(code) : name;
}

// A clear message for a failed call.
std::string Explain(const grpc::Status& status, const std::string& target) {
  std::string hint;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      hint = absl::StrCat("the sidecar at ", target,
                          " is not reachable or is shutting down; try again when it is back "
                          "(send records without an answer again; records not acked are "
                          "delivered again)");
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      hint =
          "no answer in time (for Consume: the records did not all arrive, or the sidecar "
          "dropped the stream as inactive)";
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      hint = "the sidecar rejected the request";
      break;
    case grpc::StatusCode::NOT_FOUND:
      hint = "the topic (or partition) does not exist";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      hint = "Kafka refused access";
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      hint = absl::StrCat(target, " does not serve kafka_sidecar.v1");
      break;
    default:
      hint = "the call failed";
  }
  return absl::StrCat(hint, " [", CodeName(status.error_code()), ": ", status.error_message(), "]");
}

// ---------------------------------------------------------------------------------------------
// Producing

// Order `order_id` (1, 2, ...) as a ProduceRequest whose request_id is the order id. Orders are
// keyed by customer, so one customer's orders keep their order, on one partition.
ProduceRequest MakeOrder(const std::string& topic, int order_id) {
  const std::string customer = absl::StrCat("customer-", (order_id - 1) % 3 + 1);
  std::string value = absl::StrFormat(R"({"order_id": %d, "customer": "%s", "amount_cents": %d)",
                                      order_id, customer, 100 * order_id);
  // Order 3 fails the first time it is processed; order 5 is not JSON: it can never be.
  value += order_id == 3 ? R"(, "simulate": "transient-failure"})" : "}";
  if (order_id == 5) value = "poison";

  ProduceRequest request;
  request.set_topic(topic);
  request.set_key(customer);
  request.set_value(value);
  auto* header = request.add_headers();
  header->set_key("content-type");
  header->set_value("application/json");
  header = request.add_headers();
  header->set_key("source");
  header->set_value("orders_example.cc");
  request.set_request_id(order_id);
  return request;
}

// The records written on a ProduceStream and not yet answered, by request_id (with their key,
// to report answers). The writer thread adds, the reader thread takes answers away; Add waits
// while `max_pending` are unanswered. Thread-safe.
class ProduceWindow {
 public:
  explicit ProduceWindow(int max_pending) : max_pending_(max_pending) {}

  // Waits until fewer than max_pending records are unanswered, then counts this one. Returns
  // whether it may be written (false once the stream ended) and whether the window is now full:
  // the writer must flush it, since it waits for answers next.
  struct Admission {
    bool ok;
    bool full;
  };
  Admission Add(uint64_t request_id, std::string key) {
    absl::MutexLock lock(&mu_);
    auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ended_ || unanswered_.size() < max_pending_;
    };
    if (!has_room()) {
      ++waits_;
      mu_.Await(absl::Condition(&has_room));
    }
    if (ended_) return {false, false};
    unanswered_.emplace(request_id, std::move(key));
    return {true, unanswered_.size() >= max_pending_};
  }

  // The key of an answered record, which leaves the window; nullopt for an unknown request_id.
  std::optional<std::string> Answer(uint64_t request_id) {
    absl::MutexLock lock(&mu_);
    auto it = unanswered_.find(request_id);
    if (it == unanswered_.end()) return std::nullopt;
    std::string key = std::move(it->second);
    unanswered_.erase(it);
    return key;
  }

  // The stream ended: Add waits no more.
  void End() {
    absl::MutexLock lock(&mu_);
    ended_ = true;
  }

  // The request_ids still unanswered, in order.
  std::vector<uint64_t> Unanswered() const {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> ids;
    for (const auto& [id, key] : unanswered_) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // How often Add waited for answers: backpressure at work.
  int waits() const {
    absl::MutexLock lock(&mu_);
    return waits_;
  }

 private:
  const size_t max_pending_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::string> unanswered_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  int waits_ ABSL_GUARDED_BY(mu_) = 0;
};

// Prints the request_ids that got no answer (the first 10) and how many records failed.
void ReportUnanswered(std::vector<uint64_t> missing, int failed) {
  if (!missing.empty()) {
    constexpr size_t kShown = 10;
    std::cout << "  " << missing.size() << " records got no answer: "
              << absl::StrJoin(missing.begin(), missing.begin() + std::min(missing.size(), kShown),
                               ", ")
              << (missing.size() > kShown ? ", ..." : "") << "\n";
  }
  if (failed > 0) std::cout << "  " << failed << " records failed\n";
}

struct ProduceResult {
  int produced = 0;     // records Kafka has
  grpc::Status status;  // how the stream ended
};

// Produces `count` orders on one ProduceStream: a thread writes them, at most `max_pending`
// unanswered, while this one reads the answers. Answers come in the order Kafka acknowledges
// the records (per partition), not necessarily in the order sent.
ProduceResult ProduceOrders(KafkaSidecar::Stub& stub, const std::string& topic, int count,
                            int max_pending, double timeout_s) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout_s));
  std::unique_ptr<grpc::ClientReaderWriter<ProduceRequest, ProduceResponse>> stream =
      stub.ProduceStream(&context);
  ProduceWindow window(max_pending);

  std::thread writer([&] {
    for (int order_id = 1; order_id <= count; ++order_id) {
      ProduceRequest request = MakeOrder(topic, order_id);
      const ProduceWindow::Admission admission = window.Add(order_id, request.key());
      if (!admission.ok) break;
      // Let gRPC coalesce writes, except the last one and one after which the writer waits for
      // answers: a record left in gRPC's buffer would never be answered.
      grpc::WriteOptions options;
      if (order_id < count && !admission.full) options.set_buffer_hint();
      if (!stream->Write(request, options)) break;  // the stream ended: Finish says why
    }
    stream->WritesDone();
  });

  ProduceResult result;
  int failed = 0;
  ProduceResponse answer;
  while (stream->Read(&answer)) {
    const std::string key = window.Answer(answer.request_id()).value_or("?");
    if (answer.has_error()) {
      ++failed;
      std::cout << "  record " << answer.request_id() << " (key " << key
                << ") FAILED: " << CodeName(answer.error().code()) << ": "
                << answer.error().message() << "\n";
    } else {
      ++result.produced;
      std::cout << "  record " << answer.request_id() << " (key " << key << ") -> "
                << answer.topic() << "/" << answer.partition() << "@" << answer.offset() << "\n";
    }
  }
  window.End();
  writer.join();
  result.status = stream->Finish();
  // With OK, every record written was answered (the sidecar guarantees it). Otherwise records
  // without an answer are in doubt, and an app sends them again: when the sidecar shut down
  // (UNAVAILABLE) it had not read them, but when the call broke (a deadline, a crash) Kafka may
  // have them already.
  ReportUnanswered(window.Unanswered(), failed);
  std::cout << "  the writer waited " << window.waits() << " times for answers (at most "
            << max_pending << " unanswered)\n";
  return result;
}

// The batches written on a ProduceBatchStream and not yet answered, by batch_id, with the
// request_id and key of each record (to report answers). Add waits while the batch would take
// the unanswered records past `max_pending`, unless none is unanswered (a batch is never split:
// a larger one goes alone). The writer thread adds, the reader thread takes results away.
// Thread-safe.
class BatchWindow {
 public:
  // A record of a batch: its request_id and key.
  using Entry = std::pair<uint64_t, std::string>;

  explicit BatchWindow(int max_pending) : max_pending_(max_pending) {}

  // Waits for room, then counts `batch`. False once the stream ended: do not write it.
  bool Add(const ProduceBatch& batch) {
    const size_t size = static_cast<size_t>(batch.records_size());
    absl::MutexLock lock(&mu_);
    auto has_room = [this, size]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ended_ || records_ == 0 || records_ + size <= max_pending_;
    };
    if (!has_room()) {
      ++waits_;
      mu_.Await(absl::Condition(&has_room));
    }
    if (ended_) return false;
    std::vector<Entry>& entries = unanswered_[batch.batch_id()];
    for (const ProduceRequest& record : batch.records()) {
      entries.emplace_back(record.request_id(), record.key());
    }
    records_ += size;
    return true;
  }

  // The records of an answered batch, which leaves the window; empty for an unknown batch_id.
  std::vector<Entry> Answer(uint64_t batch_id) {
    absl::MutexLock lock(&mu_);
    auto it = unanswered_.find(batch_id);
    if (it == unanswered_.end()) return {};
    std::vector<Entry> entries = std::move(it->second);
    unanswered_.erase(it);
    records_ -= entries.size();
    return entries;
  }

  // The stream ended: Add waits no more.
  void End() {
    absl::MutexLock lock(&mu_);
    ended_ = true;
  }

  // The request_ids still unanswered, in order.
  std::vector<uint64_t> Unanswered() const {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> ids;
    for (const auto& [batch_id, entries] : unanswered_) {
      for (const Entry& entry : entries) ids.push_back(entry.first);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // How often Add waited for answers: backpressure at work.
  int waits() const {
    absl::MutexLock lock(&mu_);
    return waits_;
  }

 private:
  const size_t max_pending_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::vector<Entry>> unanswered_ ABSL_GUARDED_BY(mu_);
  size_t records_ ABSL_GUARDED_BY(mu_) = 0;  // in unanswered_
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  int waits_ ABSL_GUARDED_BY(mu_) = 0;
};

// Produces `count` orders on one ProduceBatchStream, `batch_size` a batch: a thread writes the
// batches, at most `max_pending` records unanswered, while this one reads the results. A batch's
// result comes once Kafka answered all of its records, with one answer per record in the
// batch's order; results of different batches may come in any order.
ProduceResult ProduceOrderBatches(KafkaSidecar::Stub& stub, const std::string& topic, int count,
                                  int batch_size, int max_pending, double timeout_s) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout_s));
  std::unique_ptr<grpc::ClientReaderWriter<ProduceBatch, ProduceBatchResult>> stream =
      stub.ProduceBatchStream(&context);
  BatchWindow window(max_pending);

  std::thread writer([&] {
    uint64_t batch_id = 0;
    for (int first = 1; first <= count; first += batch_size) {
      ProduceBatch batch;
      batch.set_batch_id(++batch_id);
      for (int order_id = first; order_id < first + batch_size && order_id <= count; ++order_id) {
        *batch.add_records() = MakeOrder(topic, order_id);
      }
      if (!window.Add(batch)) break;
      // A batch is many records already: no buffer_hint, so none waits in gRPC's buffer.
      if (!stream->Write(batch)) break;  // the stream ended: Finish says why
    }
    stream->WritesDone();
  });

  ProduceResult result;
  int failed = 0;
  ProduceBatchResult batch_result;
  while (stream->Read(&batch_result)) {
    const std::vector<BatchWindow::Entry> records = window.Answer(batch_result.batch_id());
    for (int i = 0; i < batch_result.results_size(); ++i) {
      const ProduceResponse& answer = batch_result.results(i);
      const std::string key =
          static_cast<size_t>(i) < records.size() ? records[i].second : std::string("?");
      if (answer.has_error()) {
        ++failed;
        std::cout << "  record " << answer.request_id() << " (key " << key
                  << ") FAILED: " << CodeName(answer.error().code()) << ": "
                  << answer.error().message() << "\n";
      } else {
        ++result.produced;
        std::cout << "  record " << answer.request_id() << " (key " << key << ") -> "
                  << answer.topic() << "/" << answer.partition() << "@" << answer.offset()
                  << "\n";
      }
    }
  }
  window.End();
  writer.join();
  result.status = stream->Finish();
  // As with ProduceStream: with OK every record written was answered; otherwise the records
  // without an answer are in doubt, and an app sends them again.
  ReportUnanswered(window.Unanswered(), failed);
  std::cout << "  the writer waited " << window.waits() << " times for answers (at most "
            << max_pending << " records unanswered)\n";
  return result;
}

// ---------------------------------------------------------------------------------------------
// Consuming

std::string Describe(const Record& record) {
  return absl::StrCat(record.topic(), "/", record.partition(), "@", record.offset(),
                      " key=", record.has_key() ? record.key() : "(null)",
                      " attempt=", record.delivery_attempt());
}

// What processing one order came to.
enum class Outcome {
  kProcessed,
  kTransientFailure,  // may pass: try the record again later
  kPoison,            // can never be processed
};

// The app's business logic for one order; `reason` says why it failed. The value is JSON,
// read here with protobuf's JSON support for google.protobuf.Struct (no other library needed).
Outcome Process(const Record& record, std::string* reason) {
  google::protobuf::Struct order;
  if (!google::protobuf::util::JsonStringToMessage(record.value(), &order).ok()) {
    *reason = "the value is not JSON";
    return Outcome::kPoison;
  }
  const auto& fields = order.fields();
  auto text = [&fields](const std::string& name) {
    auto it = fields.find(name);
    return it == fields.end() ? std::string("?") : it->second.string_value();
  };
  auto number = [&fields](const std::string& name) {
    auto it = fields.find(name);
    return it == fields.end() ? int64_t{0} : static_cast<int64_t>(it->second.number_value());
  };
  if (text("simulate") == "transient-failure" && record.delivery_attempt() == 1) {
    *reason = "the payment service timed out (simulated)";
    return Outcome::kTransientFailure;
  }
  std::string source = "?";
  for (const auto& header : record.headers()) {
    if (header.key() == "source") source = header.value();
  }
  std::cout << "  processed order " << number("order_id") << " of " << text("customer") << " ("
            << number("amount_cents") << " cents, from " << source << "): " << Describe(record)
            << "\n";
  return Outcome::kProcessed;
}

struct ConsumeResult {
  int consumed = 0;  // distinct records done (acked, or nacked to the dead-letter topic)
  int redelivered = 0;
  int nacked = 0;
  int dead_lettered = 0;
  grpc::Status status;  // how the stream ended
};

// A Nack of one record. `reason` is kept in the dlq.reason header of the dead-letter record
// should the record end up there; `dead_letter` sends it there at once.
ConsumeRequest MakeNack(const Record& record, bool dead_letter, const std::string& reason) {
  ConsumeRequest nack;
  nack.mutable_nack()->add_delivery_ids(record.delivery_id());
  nack.mutable_nack()->set_dead_letter(dead_letter);
  nack.mutable_nack()->set_reason(reason);
  return nack;
}

// Processes the batches of one Consume stream, and says what to ack and nack. Not thread-safe.
//
// The subscription's policies do most of the work for a failed record. The sidecar sends a
// nacked record again after its backoff, and until it is acked or dead-lettered keeps back the
// later records of its key that it has not sent yet, while other keys flow; and it writes a
// record nacked with dead_letter (or on its kMaxAttempts-th attempt) to the dead-letter topic
// itself, with the dlq.* headers, and commits past it once Kafka has it. So the app neither
// produces dead letters nor acks them, and keeps no retry count.
//
// What the sidecar cannot keep back is what it sent already: later records of the key in the
// same batch, or in a batch sent before the nack arrived. The app gives those back too, until
// the nacked record is done, so the key's records are processed in order. They come again
// behind the nacked record, and only after it is done (the sidecar holds the key meanwhile).
class OrderConsumer {
 public:
  // Processes a batch into one Ack and one Nack per record given back, each with its reason
  // (kept in the dead-letter record's dlq.reason header if the record ends up there). Acks are
  // the common case: one message per batch, fewer than one per record.
  void Handle(const kafka_sidecar::v1::RecordBatch& batch, ConsumeRequest* ack,
              std::vector<ConsumeRequest>* nacks) {
    for (const Record& record : batch.records()) {
      if (record.delivery_attempt() > 1) ++result_.redelivered;
      const std::string route = RouteOf(record);
      auto held = held_.find(route);
      if (held != held_.end() && record.offset() > held->second) {
        std::cout << "  nack " << Describe(record) << ": an earlier record of its key was nacked\n";
        nacks->push_back(
            MakeNack(record, /*dead_letter=*/false, "an earlier record of its key was nacked"));
        continue;
      }
      std::string reason;
      switch (Process(record, &reason)) {
        case Outcome::kProcessed:
          ack->mutable_ack()->add_delivery_ids(record.delivery_id());
          break;
        case Outcome::kTransientFailure:
          // Given back: it comes again after its backoff, with delivery_attempt one higher. On
          // its last attempt the sidecar writes it to the dead-letter topic instead: done.
          nacks->push_back(MakeNack(record, /*dead_letter=*/false, reason));
          if (record.delivery_attempt() < kMaxAttempts) {
            std::cout << "  nack " << Describe(record) << ": " << reason << "\n";
            ++result_.nacked;
            held_.try_emplace(route, record.offset());
            continue;
          }
          std::cout << "  nack " << Describe(record)
                    << " on its last attempt, to the dead-letter topic: " << reason << "\n";
          ++result_.dead_lettered;
          break;
        case Outcome::kPoison:
          // It can never be processed: to the dead-letter topic at once, rather than through
          // kMaxAttempts backoffs that hold its key back. Later records of its key need not
          // wait for it: the app is done with it.
          std::cout << "  nack " << Describe(record) << " to the dead-letter topic: " << reason
                    << "\n";
          nacks->push_back(MakeNack(record, /*dead_letter=*/true, reason));
          ++result_.dead_lettered;
          break;
      }
      if (held != held_.end() && held->second == record.offset()) held_.erase(held);
      done_.emplace(record.topic(), record.partition(), record.offset());
    }
  }

  size_t done() const { return done_.size(); }
  const ConsumeResult& result() const { return result_; }

 private:
  // Records of one route come in order: a key within its partition (the partition itself for
  // a null key).
  static std::string RouteOf(const Record& record) {
    return absl::StrCat(record.topic(), "/", record.partition(), "/",
                        record.has_key() ? "key:" + record.key() : "null");
  }

  ConsumeResult result_;
  // (topic, partition, offset) of the records done: at least once, so a record may come twice.
  absl::flat_hash_set<std::tuple<std::string, int32_t, int64_t>> done_;
  // Routes with a nacked record not yet done, and its offset.
  absl::flat_hash_map<std::string, int64_t> held_;
};

// Consumes until `count` distinct records are done, then half-closes the stream. The
// subscription asks the sidecar to back off nacked records and to dead-letter poison ones to
// `<topic>.dead-letter`.
ConsumeResult ConsumeOrders(KafkaSidecar::Stub& stub, const std::string& group,
                            const std::string& topic, int count, int max_in_flight,
                            double timeout_s) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout_s));
  std::unique_ptr<grpc::ClientReaderWriter<ConsumeRequest, ConsumeResponse>> stream =
      stub.Consume(&context);
  OrderConsumer consumer;

  ConsumeRequest subscribe;
  kafka_sidecar::v1::Subscribe& subscription = *subscribe.mutable_subscribe();
  subscription.set_group(group);
  subscription.add_topics(topic);
  subscription.set_max_in_flight(max_in_flight);
  subscription.mutable_retry_policy()->set_min_backoff_ms(kMinBackoffMs);
  subscription.mutable_retry_policy()->set_max_backoff_ms(kMaxBackoffMs);
  subscription.mutable_dead_letter_policy()->set_topic(DeadLetterTopic(topic));
  subscription.mutable_dead_letter_policy()->set_max_delivery_attempts(kMaxAttempts);
  // A failed write means the stream ended; the reads below then end too, and Finish says why.
  stream->Write(subscribe);

  ConsumeResponse response;
  while (consumer.done() < static_cast<size_t>(count) && stream->Read(&response)) {
    if (response.has_subscribed()) {
      std::cout << "  subscribed: group " << group << ", stream "
                << response.subscribed().stream_id() << "\n";
      continue;
    }
    ConsumeRequest ack;
    std::vector<ConsumeRequest> nacks;
    consumer.Handle(response.records(), &ack, &nacks);
    if (ack.has_ack()) stream->Write(ack);
    for (const ConsumeRequest& nack : nacks) stream->Write(nack);
  }
  // Half-close: the sidecar ends the stream with OK once it has read the acks and nacks (it
  // writes the dead letters on its own time). Records it sent meanwhile stay unacked and are
  // delivered again to the group's next stream.
  stream->WritesDone();
  int late = 0;
  while (stream->Read(&response)) late += response.records().records_size();
  if (late > 0) {
    std::cout << "  " << late << " records arrived after the last one needed; left unacked\n";
  }
  ConsumeResult result = consumer.result();
  result.consumed = static_cast<int>(consumer.done());
  result.status = stream->Finish();
  std::cout << "  the sidecar ended the stream: " << CodeName(result.status.error_code()) << "\n";
  return result;
}

// The value of the header `key` of `record`, or "?".
std::string HeaderValue(const Record& record, absl::string_view key) {
  for (const auto& header : record.headers()) {
    if (header.key() == key) return header.value();
  }
  return "?";
}

struct DeadLetterResult {
  int read = 0;
  grpc::Status status;  // how the stream ended
};

// Reads `count` records of the dead-letter topic `topic` as `group` and acks them, printing
// each with why it was given up on and where it came from (the sidecar's dlq.* headers): how
// an app inspects its dead letters, or replays them (produce the value back to
// dlq.original.topic once the bug is fixed). A plain subscription, without policies.
DeadLetterResult ReadDeadLetters(KafkaSidecar::Stub& stub, const std::string& group,
                                 const std::string& topic, int count, double timeout_s) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout_s));
  std::unique_ptr<grpc::ClientReaderWriter<ConsumeRequest, ConsumeResponse>> stream =
      stub.Consume(&context);
  ConsumeRequest subscribe;
  subscribe.mutable_subscribe()->set_group(group);
  subscribe.mutable_subscribe()->add_topics(topic);
  stream->Write(subscribe);

  DeadLetterResult result;
  ConsumeResponse response;
  while (result.read < count && stream->Read(&response)) {
    if (response.has_subscribed()) {
      std::cout << "  subscribed: group " << group << ", stream "
                << response.subscribed().stream_id() << "\n";
      continue;
    }
    ConsumeRequest ack;
    for (const Record& record : response.records().records()) {
      if (result.read == count) break;  // more than expected: left unacked
      ++result.read;
      std::cout << "  dead letter: key=" << (record.has_key() ? record.key() : "(null)")
                << " reason=" << HeaderValue(record, "dlq.reason")
                << " attempts=" << HeaderValue(record, "dlq.delivery.attempts") << " from "
                << HeaderValue(record, "dlq.original.topic") << "/"
                << HeaderValue(record, "dlq.original.partition") << "@"
                << HeaderValue(record, "dlq.original.offset") << "\n";
      ack.mutable_ack()->add_delivery_ids(record.delivery_id());
    }
    if (ack.has_ack()) stream->Write(ack);
  }
  stream->WritesDone();
  while (stream->Read(&response)) {
  }
  result.status = stream->Finish();
  std::cout << "  the sidecar ended the stream: " << CodeName(result.status.error_code()) << "\n";
  return result;
}

// Reports a failure on stderr, after what was printed so far; returns the exit code 1.
int Fail(absl::string_view message) {
  std::cout.flush();
  std::cerr << "orders_example: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "produces and consumes orders through kafka-sidecar.\n"
      "  orders_example [--target=localhost:50051] [--count=10] [--topic=orders] "
      "[--group=orders-example] [--produce=batches|stream] [--batch_size=5]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_count < 1 || FLAGS_max_pending < 1 || FLAGS_batch_size < 1 ||
      FLAGS_max_in_flight < 0) {
    std::cerr << "orders_example: --count, --max_pending and --batch_size must be 1 or more, "
                 "--max_in_flight 0 or more\n";
    return 2;
  }
  if (FLAGS_produce != "batches" && FLAGS_produce != "stream") {
    std::cerr << "orders_example: --produce must be batches or stream\n";
    return 2;
  }

  // The sidecar is local: reconnect quickly when it restarts (gRPC's default backs off to 2 min).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(FLAGS_target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(DeadlineIn(FLAGS_ready_timeout_s))) {
    return Fail(absl::StrCat("the sidecar at ", FLAGS_target, " did not accept connections within ",
                             FLAGS_ready_timeout_s, " s"));
  }
  std::unique_ptr<KafkaSidecar::Stub> stub = KafkaSidecar::NewStub(channel);

  ProduceResult produced;
  if (FLAGS_produce == "batches") {
    std::cout << "producing " << FLAGS_count << " orders to " << FLAGS_topic
              << " on one ProduceBatchStream, " << FLAGS_batch_size << " a batch\n";
    produced = ProduceOrderBatches(*stub, FLAGS_topic, FLAGS_count, FLAGS_batch_size,
                                   FLAGS_max_pending, FLAGS_timeout_s);
  } else {
    std::cout << "producing " << FLAGS_count << " orders to " << FLAGS_topic
              << " on one ProduceStream\n";
    produced = ProduceOrders(*stub, FLAGS_topic, FLAGS_count, FLAGS_max_pending, FLAGS_timeout_s);
  }
  if (!produced.status.ok()) {
    return Fail(absl::StrCat("producing: ", Explain(produced.status, FLAGS_target)));
  }
  std::cout << "produced " << produced.produced << "\n";
  if (produced.produced != FLAGS_count) {
    return Fail(absl::StrCat(FLAGS_count - produced.produced, " of ", FLAGS_count,
                             " records were not produced"));
  }

  std::cout << "consuming " << FLAGS_count << " orders from " << FLAGS_topic << " as group "
            << FLAGS_group << "\n";
  ConsumeResult consumed = ConsumeOrders(*stub, FLAGS_group, FLAGS_topic, FLAGS_count,
                                         FLAGS_max_in_flight, FLAGS_timeout_s);
  if (!consumed.status.ok()) {
    return Fail(absl::StrCat("consuming: ", Explain(consumed.status, FLAGS_target)));
  }
  auto report = [&consumed] {
    std::cout << "consumed " << consumed.consumed << "\n"
              << "redelivered " << consumed.redelivered << "\n"
              << "nacked " << consumed.nacked << "\n"
              << "dead-lettered " << consumed.dead_lettered << "\n";
  };
  if (consumed.consumed != FLAGS_count) {
    report();
    return Fail(absl::StrCat("the stream ended after ", consumed.consumed, " of ", FLAGS_count,
                             " records"));
  }

  // Read the dead letters back in a group of their own: the orders' group is done with them.
  DeadLetterResult dead_letters;
  if (consumed.dead_lettered > 0) {
    const std::string dead_letter_group = FLAGS_group + "-dead-letters";
    std::cout << "reading " << consumed.dead_lettered << " dead letters from "
              << DeadLetterTopic(FLAGS_topic) << " as group " << dead_letter_group << "\n";
    dead_letters = ReadDeadLetters(*stub, dead_letter_group, DeadLetterTopic(FLAGS_topic),
                                   consumed.dead_lettered, FLAGS_timeout_s);
    if (!dead_letters.status.ok()) {
      return Fail(absl::StrCat("reading dead letters: ",
                               Explain(dead_letters.status, FLAGS_target)));
    }
  }
  report();
  std::cout << "dead letters read back " << dead_letters.read << "\n";
  if (dead_letters.read != consumed.dead_lettered) {
    return Fail(absl::StrCat("the dead-letter stream ended after ", dead_letters.read, " of ",
                             consumed.dead_lettered, " records"));
  }
  return 0;
}
