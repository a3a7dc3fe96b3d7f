#include "testing/sidecar_process.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>


namespace kafka_sidecar::testing {

absl::StatusOr<std::unique_ptr<SidecarProcess>> SidecarProcess::Start(
    const std::string& bootstrap, const std::vector<std::string>& flags, const std::string& name) {
  auto sidecar = std::unique_ptr<SidecarProcess>(new SidecarProcess());
  sidecar->target_ = "unix:" + UnixSocketPath(name);
  // Metrics on a free port, so that sidecars run side by side (a later flag may override).
  std::vector<std::string> argv = {"sidecar/kafka_sidecar", "--brokers=" + bootstrap,
                                   "--listen=" + sidecar->target_,
                                   "--metrics_listen=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const char* tmp = std::getenv("TEST_TMPDIR");
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name + ".log");
  if (!process.ok()) return process.status();
  sidecar->process_ = *std::move(process);
  if (!WaitForServing(sidecar->target_, absl::Seconds(30))) {
    return absl::UnavailableError("the sidecar did not become ready:\n" + sidecar->process_->Log());
  }
  // "serving /metrics, /healthz and /readyz on http://127.0.0.1:0 (port N)"
  const std::string log = sidecar->process_->Log();
  const size_t at = log.find("/readyz on http://");
  if (at != std::string::npos) {
    const size_t port = log.find("(port ", at);
    if (port != std::string::npos) {
      sidecar->metrics_port_ = std::atoi(log.c_str() + port + 6);
    }
  }
  return sidecar;
}

std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> SidecarProcess::NewStub() const {
  return kafka_sidecar::v1::KafkaSidecar::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
}

}  // namespace kafka_sidecar::testing
