#include "sidecar/http_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kafka_sidecar::sidecar {

HttpServer::HttpServer() : server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handlers handlers) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not host:port"));
  }
  absl::string_view host(address.data(), colon);
  host = absl::StripSuffix(absl::StripPrefix(host, "["), "]");

  std::unique_ptr<HttpServer> server(new HttpServer());
  httplib::Server& http = *server->server_;
  http.Get("/metrics", [metrics = handlers.metrics](const httplib::Request&,
                                                    httplib::Response& response) {
    response.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  http.Get("/readyz", [ready = handlers.ready](const httplib::Request&,
                                              httplib::Response& response) {
    auto [ok, reason] = ready();
    response.status = ok ? 200 : 503;
    response.set_content(reason + "\n", "text/plain");
  });
  const std::string bind_host(host);
  if (port == 0) {
    server->port_ = http.bind_to_any_port(bind_host);
  } else if (http.bind_to_port(bind_host, port)) {
    server->port_ = port;
  }
  if (server->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", address, " (address in use, or not of this host?)"));
  }
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  return server;
}

}  // namespace kafka_sidecar::sidecar
