// kafka_sidecar_cli: talks to a running sidecar over its public gRPC API.
//
//   kafka_sidecar_cli [--target=127.0.0.1:50051] produce --topic=T [--batch=N] [KEY=]VALUE ...
//   kafka_sidecar_cli [--target=...] consume --group=G --topic=T[,T2] [--max_records=N]
//                     [--nack] [--dead_letter_topic=D [--max_delivery_attempts=N]]
//                     [--min_backoff_ms=MS]
//   kafka_sidecar_cli [--target=...] health
//
// produce sends the records over one ProduceStream (with --batch=N, over one
// ProduceBatchStream, N records a message) and prints one line per record: its key, partition
// and offset, or the error. consume subscribes, prints each record and acks it (or, with
// --nack, nacks it: for trying retries and dead letters), until --max_records have arrived or
// none came for --idle_ms.

#include <gflags/gflags.h>
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proto/health.grpc.pb.h"
#include "proto/kafka_sidecar.grpc.pb.h"

DEFINE_string(target, "127.0.0.1:50051", "the sidecar's gRPC address: host:port or unix:/path");
DEFINE_string(topic, "", "produce: the topic to write to");
DEFINE_string(key_separator, "=",
              "produce: KEY<sep>VALUE arguments get that key; arguments without it, and every "
              "argument when empty, get a null key");
DEFINE_int32(batch, 0,
             "produce: send the records over ProduceBatchStream, this many per batch (0: one "
             "ProduceStream message per record)");
DEFINE_int32(timeout_ms, 30000, "how long the whole command may take");
DEFINE_string(group, "", "consume: the consumer group");
DEFINE_int64(max_records, 0, "consume: stop after this many records (0: no limit)");
DEFINE_int32(idle_ms, 5000, "consume: stop when no record came for this long");
DEFINE_bool(nack, false,
            "consume: nack each record instead of acking it (it comes again, or goes to the "
            "dead-letter topic on its last attempt)");
DEFINE_string(dead_letter_topic, "",
              "consume: subscribe with a dead-letter policy writing to this topic");
DEFINE_int32(max_delivery_attempts, 3,
             "consume: with --dead_letter_topic, a record nacked on this attempt goes there (0: "
             "only a nack asking for it, see --dead_letter)");
DEFINE_bool(dead_letter, false,
            "consume: with --nack, ask for each record to go to the dead-letter topic at once");
DEFINE_int32(min_backoff_ms, 0,
             "consume: subscribe with a retry policy: a nacked record comes again after this "
             "long, doubling per nack up to --max_backoff_ms (0: at once)");
DEFINE_int32(max_backoff_ms, 0, "consume: the retry backoff's cap (0: --min_backoff_ms)");

namespace {

using kafka_sidecar::v1::ProduceBatch;
using kafka_sidecar::v1::ProduceBatchResult;
using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(FLAGS_timeout_ms);
}

// Prints the answer to `request`; false when it is an error.
bool PrintAnswer(const ProduceRequest& request, const ProduceResponse& response) {
  std::cout << FLAGS_topic << " key=" << (request.has_key() ? request.key() : "(null)");
  if (response.has_error()) {
    std::cout << " error=" << response.error().message() << "\n";
    return false;
  }
  std::cout << " partition=" << response.partition() << " offset=" << response.offset() << "\n";
  return true;
}

// How a produce call ended: 0 when it and every record succeeded.
int ProduceExit(const grpc::Status& status, int failed) {
  if (!status.ok()) {
    std::cerr << "produce: " << status.error_message() << " (code " << status.error_code()
              << ")\n";
    return 1;
  }
  return failed == 0 ? 0 : 1;
}

// Sends `requests` over one ProduceBatchStream, --batch of them per batch (batch_id: the index
// of its first record), and prints the answers batch by batch, each in record order.
int ProduceBatches(const std::shared_ptr<grpc::Channel>& channel,
                   const std::vector<ProduceRequest>& requests) {
  std::vector<ProduceBatch> batches;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i % FLAGS_batch == 0) batches.emplace_back().set_batch_id(i);
    *batches.back().add_records() = requests[i];
  }
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  auto stream = stub->ProduceBatchStream(&context);
  std::thread writer([&] {
    for (const ProduceBatch& batch : batches) {
      if (!stream->Write(batch)) break;
    }
    stream->WritesDone();
  });
  int failed = 0;
  ProduceBatchResult result;
  while (stream->Read(&result)) {
    for (int i = 0; i < result.results_size(); ++i) {
      const size_t index = result.batch_id() + i;
      if (index >= requests.size()) continue;  // not ours: only a broken server sends it
      if (!PrintAnswer(requests[index], result.results(i))) ++failed;
    }
  }
  writer.join();
  return ProduceExit(stream->Finish(), failed);
}

int Produce(const std::shared_ptr<grpc::Channel>& channel, const std::vector<std::string>& args) {
  if (FLAGS_topic.empty()) {
    std::cerr << "produce: --topic is required\n";
    return 2;
  }
  if (FLAGS_batch < 0) {
    std::cerr << "produce: --batch must be 0 or more\n";
    return 2;
  }
  if (args.empty()) {
    std::cerr << "produce: give at least one [KEY=]VALUE\n";
    return 2;
  }
  std::vector<ProduceRequest> requests;
  for (size_t i = 0; i < args.size(); ++i) {
    ProduceRequest& request = requests.emplace_back();
    request.set_topic(FLAGS_topic);
    request.set_request_id(i);
    const size_t sep =
        FLAGS_key_separator.empty() ? std::string::npos : args[i].find(FLAGS_key_separator);
    if (sep == std::string::npos) {
      request.set_value(args[i]);
    } else {
      request.set_key(args[i].substr(0, sep));
      request.set_value(args[i].substr(sep + FLAGS_key_separator.size()));
    }
  }
  if (FLAGS_batch > 0) return ProduceBatches(channel, requests);
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  auto stream = stub->ProduceStream(&context);
  std::thread writer([&] {
    for (const ProduceRequest& request : requests) {
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  int failed = 0;
  ProduceResponse response;
  while (stream->Read(&response)) {
    if (response.request_id() >= requests.size()) continue;  // not ours
    if (!PrintAnswer(requests[response.request_id()], response)) ++failed;
  }
  writer.join();
  return ProduceExit(stream->Finish(), failed);
}

int Consume(const std::shared_ptr<grpc::Channel>& channel) {
  if (FLAGS_group.empty() || FLAGS_topic.empty()) {
    std::cerr << "consume: --group and --topic are required\n";
    return 2;
  }
  auto stub = kafka_sidecar::v1::KafkaSidecar::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  auto stream = stub->Consume(&context);
  kafka_sidecar::v1::ConsumeRequest subscribe;
  subscribe.mutable_subscribe()->set_group(FLAGS_group);
  for (absl::string_view topic : absl::StrSplit(FLAGS_topic, ',', absl::SkipEmpty())) {
    subscribe.mutable_subscribe()->add_topics(std::string(topic));
  }
  if (FLAGS_min_backoff_ms < 0 || FLAGS_max_backoff_ms < 0 || FLAGS_max_delivery_attempts < 0) {
    std::cerr << "consume: --min_backoff_ms, --max_backoff_ms and --max_delivery_attempts "
                 "cannot be negative\n";
    return 2;
  }
  if (FLAGS_min_backoff_ms > 0 || FLAGS_max_backoff_ms > 0) {
    auto* retry = subscribe.mutable_subscribe()->mutable_retry_policy();
    retry->set_min_backoff_ms(static_cast<uint32_t>(FLAGS_min_backoff_ms));
    retry->set_max_backoff_ms(static_cast<uint32_t>(FLAGS_max_backoff_ms));
  }
  if (!FLAGS_dead_letter_topic.empty()) {
    auto* dead = subscribe.mutable_subscribe()->mutable_dead_letter_policy();
    dead->set_topic(FLAGS_dead_letter_topic);
    dead->set_max_delivery_attempts(static_cast<uint32_t>(FLAGS_max_delivery_attempts));
  }
  if (!stream->Write(subscribe)) {
    std::cerr << "consume: " << stream->Finish().error_message() << "\n";
    return 1;
  }
  // The reader waits on Read; a watchdog ends the call when no record came for --idle_ms.
  absl::Mutex mu;
  absl::Time last_record = absl::Now();
  bool done = false;
  std::thread watchdog([&] {
    absl::MutexLock lock(&mu);
    while (!done) {
      const absl::Time idle_until = last_record + absl::Milliseconds(FLAGS_idle_ms);
      if (absl::Now() >= idle_until) {
        context.TryCancel();
        return;
      }
      mu.AwaitWithDeadline(absl::Condition(&done), idle_until);
    }
  });
  int64_t received = 0;
  kafka_sidecar::v1::ConsumeResponse response;
  while ((FLAGS_max_records == 0 || received < FLAGS_max_records) && stream->Read(&response)) {
    if (response.has_subscribed()) {
      std::cerr << "subscribed as stream " << response.subscribed().stream_id() << "\n";
      continue;
    }
    kafka_sidecar::v1::ConsumeRequest reply;
    auto* ids = FLAGS_nack ? reply.mutable_nack()->mutable_delivery_ids()
                           : reply.mutable_ack()->mutable_delivery_ids();
    if (FLAGS_nack) {
      reply.mutable_nack()->set_dead_letter(FLAGS_dead_letter);
      reply.mutable_nack()->set_reason("nacked by kafka_sidecar_cli");
    }
    for (const kafka_sidecar::v1::Record& record : response.records().records()) {
      std::cout << record.topic() << " partition=" << record.partition()
                << " offset=" << record.offset()
                << " key=" << (record.has_key() ? record.key() : "(null)")
                << " value=" << record.value() << " attempt=" << record.delivery_attempt();
      for (int i = 0; i < record.headers_size(); ++i) {
        std::cout << (i == 0 ? " headers=" : ",") << record.headers(i).key() << "="
                  << record.headers(i).value();
      }
      std::cout << "\n";
      ids->Add(record.delivery_id());
      ++received;
    }
    stream->Write(reply);
    absl::MutexLock lock(&mu);
    last_record = absl::Now();
  }
  {
    absl::MutexLock lock(&mu);
    done = true;
  }
  watchdog.join();
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  std::cerr << "consumed " << received << " records\n";
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    std::cerr << "consume: " << status.error_message() << " (code " << status.error_code()
              << ")\n";
    return 1;
  }
  return 0;
}

int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  context.set_wait_for_ready(true);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::cerr << "health: " << status.error_message() << "\n";
    return 1;
  }
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
            << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "talks to a running kafka-sidecar.\n"
      "  kafka_sidecar_cli [--target=HOST:PORT] produce --topic=T [--batch=N] [KEY=]VALUE ...\n"
      "  kafka_sidecar_cli [--target=HOST:PORT] consume --group=G --topic=T [--max_records=N]\n"
      "                    [--nack] [--dead_letter_topic=D [--max_delivery_attempts=N]]\n"
      "                    [--min_backoff_ms=MS]\n"
      "  kafka_sidecar_cli [--target=HOST:PORT] health");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc < 2) {
    std::cerr << "usage: kafka_sidecar_cli [--target=HOST:PORT] produce|consume|health ... "
                 "(--help)\n";
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  auto channel = grpc::CreateChannel(FLAGS_target, grpc::InsecureChannelCredentials());
  if (command == "produce") return Produce(channel, args);
  if (command == "consume") return Consume(channel);
  if (command == "health") return Health(channel);
  std::cerr << "unknown command '" << command << "': produce, consume or health\n";
  return 2;
}
