#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_HTTP_SERVER_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kafka_sidecar::sidecar {

struct HttpServerOptions {
  absl::Duration request_timeout = absl::Seconds(5);
  size_t max_connections = 64;
};

// The sidecar's HTTP endpoints: GET (or HEAD) /metrics (Prometheus text), /healthz (200 while
// the process serves: liveness) and /readyz (200 when ready, else 503 with the reason).
//
// One thread serves every connection with poll(2), so no client can hold up another: a
// connection that sends half a request, or reads its answer slowly, costs a slot and nothing
// more. Each request must arrive whole within `request_timeout` of the connection opening or of
// the previous answer (an idle keep-alive connection is closed then too), and each answer must
// be taken within it; the server keeps at most `max_connections`, closing the one that has
// waited longest to make room for a new one, so a probe always gets in.
class HttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    // Ready, and a one-line reason.
    std::function<std::pair<bool, std::string>()> ready;
  };
  using Options = HttpServerOptions;

  // Binds `address` (host:port or [v6]:port; port 0 picks one) and serves on a thread of its
  // own. INVALID_ARGUMENT for an address of another shape, UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           Handlers handlers,
                                                           Options options = Options());
  // Stops serving and closes every connection.
  ~HttpServer();

  int port() const { return port_; }

 private:
  struct Connection;
  HttpServer(Handlers handlers, Options options, int listen_fd, int wake_fd, int port);

  void Serve();
  // Reads what the connection sent and answers each whole request in it; false when the
  // connection is to be closed.
  bool OnReadable(Connection& connection, absl::Time now);
  bool OnWritable(Connection& connection, absl::Time now);
  // Answers the request at the head of the connection's input, if it is all there.
  bool AnswerRequests(Connection& connection, absl::Time now);
  void Accept(absl::Time now);

  const Handlers handlers_;
  const Options options_;
  const int listen_fd_;
  const int wake_fd_;  // an eventfd: the destructor ends Serve through it
  const int port_;
  std::unique_ptr<std::thread> thread_;
};

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_HTTP_SERVER_H_
