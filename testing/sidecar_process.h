#ifndef KAFKA_SIDECAR_TESTING_SIDECAR_PROCESS_H_
#define KAFKA_SIDECAR_TESTING_SIDECAR_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/kafka_sidecar.grpc.pb.h"
#include "testing/probes.h"
#include "testing/subprocess.h"

namespace kafka_sidecar::testing {

// The real sidecar binary (sidecar/kafka_sidecar, a data dependency of the test) running as a
// child process on a unix socket of its own, ready to serve.
class SidecarProcess {
 public:
  // Starts it with `--brokers=bootstrap`, `--listen` and `flags`, and waits until its health
  // service says SERVING.
  static absl::StatusOr<std::unique_ptr<SidecarProcess>> Start(const std::string& bootstrap,
                                                               const std::vector<std::string>& flags,
                                                               const std::string& name);

  Subprocess& process() { return *process_; }
  const std::string& target() const { return target_; }
  // The port of /metrics, /healthz and /readyz on 127.0.0.1; 0 when off.
  int metrics_port() const { return metrics_port_; }
  // A new stub on a new channel.
  std::unique_ptr<kafka_sidecar::v1::KafkaSidecar::Stub> NewStub() const;

 private:
  std::unique_ptr<Subprocess> process_;
  std::string target_;
  int metrics_port_ = 0;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_SIDECAR_PROCESS_H_
