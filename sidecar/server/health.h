#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_HEALTH_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_HEALTH_H_

#include <grpcpp/health_check_service_interface.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/producer.h"

namespace kafka_sidecar::sidecar {

// Whether the sidecar can do its job: it is ready while Kafka answers (asked for metadata
// through the producer's connection every interval) and it is not draining. Published to the
// gRPC health services it is given: services "" and "kafka_sidecar.v1.KafkaSidecar" are
// SERVING only while ready (readiness), "liveness" is SERVING while the process serves.
// Thread-safe.
class Health {
 public:
  static constexpr char kLiveness[] = "liveness";

  Health(broker::Producer& producer, absl::Duration interval);
  // Stops checking (as Stop).
  ~Health();

  // Publishes to `service` from now on (it must outlive this object, or be detached first by
  // destroying this object).
  void Publish(grpc::HealthCheckServiceInterface* service);
  // Starts checking Kafka (the first check at once). Not ready until a check succeeds.
  void Start();
  // Not ready from now on: the sidecar is shutting down.
  void BeginDrain();
  // Stops checking and publishing (waits for a check in progress). Call before the health
  // services go away.
  void Stop();

  bool ready() const;
  // "ready", or why not ("Kafka unreachable: ...", "draining").
  std::string Describe() const;
  bool kafka_reachable() const;

 private:
  void Run();
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  broker::Producer& producer_;
  const absl::Duration interval_;
  std::thread checker_;

  mutable absl::Mutex mu_;
  std::vector<grpc::HealthCheckServiceInterface*> services_ ABSL_GUARDED_BY(mu_);
  absl::Status kafka_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("Kafka not checked yet");
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_HEALTH_H_
