#include "sidecar/http_server.h"

#include <httplib.h>

#include <glog/logging.h>

#include <chrono>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace kafka_sidecar::sidecar {
namespace {

// Connections served at once, and waiting for a worker. Past that the accepting thread serves
// the connection itself, so further ones wait in the kernel's backlog, not in memory: whoever
// can reach the port cannot grow the sidecar.
constexpr size_t kWorkers = 2;
constexpr size_t kMaxWaiting = 16;

class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue() {
    for (size_t i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { Work(); });
  }

  void enqueue(std::function<void()> job) override {
    {
      absl::MutexLock lock(&mu_);
      if (jobs_.size() < kMaxWaiting) {
        jobs_.push_back(std::move(job));
        return;
      }
    }
    job();
  }

  void shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
    }
    for (std::thread& worker : workers_) worker.join();
  }

 private:
  void Work() {
    while (true) {
      std::function<void()> job;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return shutdown_ || !jobs_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (jobs_.empty()) return;  // shut down, nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace

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
  http.new_task_queue = [] { return new BoundedTaskQueue(); };
  http.set_read_timeout(std::chrono::seconds(2));
  http.set_write_timeout(std::chrono::seconds(2));
  http.set_keep_alive_timeout(2);
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
  server->thread_ = std::thread([http = &http, address] {
    if (!http->listen_after_bind()) LOG(ERROR) << "[http] stopped serving " << address;
  });
  // stop() is a no-op until the server runs: wait for it, so that destroying this object
  // right away still stops it.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!http.is_running() && absl::Now() < deadline) std::this_thread::yield();
  return server;
}

}  // namespace kafka_sidecar::sidecar
