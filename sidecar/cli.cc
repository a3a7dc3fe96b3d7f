// kafka_sidecar_cli: talks to a running sidecar over its public gRPC API.
//
//   kafka_sidecar_cli [--target=127.0.0.1:50051] produce --topic=T [KEY=]VALUE ...
//   kafka_sidecar_cli [--target=...] health
//
// produce sends the records over one ProduceStream and prints one line per record:
// its key, partition and offset, or the error.

#include <gflags/gflags.h>
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "proto/health.grpc.pb.h"
#include "proto/kafka_sidecar.grpc.pb.h"

DEFINE_string(target, "127.0.0.1:50051", "the sidecar's gRPC address: host:port or unix:/path");
DEFINE_string(topic, "", "produce: the topic to write to");
DEFINE_string(key_separator, "=",
              "produce: KEY<sep>VALUE arguments get that key; arguments without it, and every "
              "argument when empty, get a null key");
DEFINE_int32(timeout_ms, 30000, "how long the whole command may take");

namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(FLAGS_timeout_ms);
}

int Produce(const std::shared_ptr<grpc::Channel>& channel, const std::vector<std::string>& args) {
  if (FLAGS_topic.empty()) {
    std::cerr << "produce: --topic is required\n";
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
    const ProduceRequest& request = requests[response.request_id()];
    std::cout << FLAGS_topic << " key=" << (request.has_key() ? request.key() : "(null)");
    if (response.has_error()) {
      ++failed;
      std::cout << " error=" << response.error().message() << "\n";
    } else {
      std::cout << " partition=" << response.partition() << " offset=" << response.offset()
                << "\n";
    }
  }
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) {
    std::cerr << "produce: " << status.error_message() << " (code " << status.error_code()
              << ")\n";
    return 1;
  }
  return failed == 0 ? 0 : 1;
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
      "  kafka_sidecar_cli [--target=HOST:PORT] produce --topic=T [KEY=]VALUE ...\n"
      "  kafka_sidecar_cli [--target=HOST:PORT] health");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc < 2) {
    std::cerr << "usage: kafka_sidecar_cli [--target=HOST:PORT] produce|health ... (--help)\n";
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  auto channel = grpc::CreateChannel(FLAGS_target, grpc::InsecureChannelCredentials());
  if (command == "produce") return Produce(channel, args);
  if (command == "health") return Health(channel);
  std::cerr << "unknown command '" << command << "': produce or health\n";
  return 2;
}
