#include "testing/sidecar_process.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>

#include "proto/health.grpc.pb.h"

namespace kafka_sidecar::testing {

bool WaitForServing(const std::string& target, absl::Duration timeout) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) return false;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    context.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    if (health->Check(&context, request, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::unique_ptr<SidecarProcess>> SidecarProcess::Start(
    const std::string& bootstrap, const std::vector<std::string>& flags, const std::string& name) {
  auto sidecar = std::unique_ptr<SidecarProcess>(new SidecarProcess());
  sidecar->target_ = "unix:" + UnixSocketPath(name);
  std::vector<std::string> argv = {"sidecar/kafka_sidecar", "--brokers=" + bootstrap,
                                   "--listen=" + sidecar->target_};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const char* tmp = std::getenv("TEST_TMPDIR");
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name + ".log");
  if (!process.ok()) return process.status();
  sidecar->process_ = *std::move(process);
  if (!WaitForServing(sidecar->target_, absl::Seconds(30))) {
    return absl::UnavailableError("the sidecar did not become ready:\n" + sidecar->process_->Log());
  }
  return sidecar;
}

std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> SidecarProcess::NewStub() const {
  return kafka_sidecar::v1::KafkaSidecar::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
}

}  // namespace kafka_sidecar::testing
