#ifndef KAFKA_SIDECAR_SIDECAR_HTTP_SERVER_H_
#define KAFKA_SIDECAR_SIDECAR_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace kafka_sidecar::sidecar {

// The sidecar's HTTP endpoints, on cpp-httplib: GET /metrics (Prometheus text), /healthz (200
// while the process serves: liveness) and /readyz (200 when ready, else 503 with the reason).
class HttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    // Ready, and a one-line reason.
    std::function<std::pair<bool, std::string>()> ready;
  };

  // Binds `address` (host:port; port 0 picks one) and serves on a thread of its own.
  // UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           Handlers handlers);
  // Stops serving.
  ~HttpServer();

  int port() const { return port_; }

 private:
  HttpServer();

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_HTTP_SERVER_H_
