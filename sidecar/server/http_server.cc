#include "sidecar/server/http_server.h"

#include <arpa/inet.h>
#include <glog/logging.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace kafka_sidecar::sidecar {
namespace {

// A request head (request line and headers) larger than this is refused: these endpoints take
// no parameters, and a client cannot make the server hold more than this per connection.
constexpr size_t kMaxRequestHead = 8192;
constexpr char kEndOfHead[] = "\r\n\r\n";
constexpr size_t kEndOfHeadSize = 4;

struct Answer {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;  // for 405
  bool close = false;
};

absl::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

std::string Serialize(const Answer& answer, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", answer.status, " ", Reason(answer.status),
                                 "\r\nContent-Type: ", answer.content_type,
                                 "\r\nContent-Length: ", answer.body.size(),
                                 "\r\nConnection: ", answer.close ? "close" : "keep-alive", "\r\n");
  if (!answer.allow.empty()) absl::StrAppend(&out, "Allow: ", answer.allow, "\r\n");
  absl::StrAppend(&out, "\r\n");
  if (!head_only) absl::StrAppend(&out, answer.body);
  return out;
}

Answer Refusal(int status, absl::string_view why) {
  Answer answer;
  answer.status = status;
  answer.body = absl::StrCat(why, "\n");
  answer.close = true;  // the rest of what it sent cannot be trusted to be a request
  return answer;
}

void CloseFd(int fd) {
  if (fd >= 0) close(fd);
}

}  // namespace

struct HttpServer::Connection {
  int fd = -1;
  std::string in;       // received, not yet answered
  std::string out;      // the answer being written
  size_t written = 0;   // of `out`
  bool close_after_write = false;
  bool peer_closed = false;
  // Answered and shut down for writing: what else the client sends is read and dropped until
  // it closes (closing with unread input would reset the connection, and the client could
  // lose the answer).
  bool draining = false;
  // The request, or the taking of the answer, must be done by then.
  absl::Time deadline;

  ~Connection() { CloseFd(fd); }
};

HttpServer::HttpServer(Handlers handlers, Options options, int listen_fd, int wake_fd, int port)
    : handlers_(std::move(handlers)),
      options_(options),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port) {}

HttpServer::~HttpServer() {
  if (thread_ != nullptr) {
    const uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) != sizeof(one)) PLOG(ERROR) << "[http] wake";
    thread_->join();
  }
  CloseFd(listen_fd_);
  CloseFd(wake_fd_);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handlers handlers,
                                                              Options options) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not host:port"));
  }
  absl::string_view host(address.data(), colon);
  host = absl::StripSuffix(absl::StripPrefix(host, "["), "]");

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string host_name(host);
  const std::string port_name = absl::StrCat(port);
  if (int error = getaddrinfo(host_name.empty() ? nullptr : host_name.c_str(), port_name.c_str(),
                              &hints, &found);
      error != 0) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", address, ": ", gai_strerror(error)));
  }
  int listen_fd = -1;
  std::string bind_error;
  for (addrinfo* a = found; a != nullptr && listen_fd < 0; a = a->ai_next) {
    listen_fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) continue;
    const int on = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(listen_fd, a->ai_addr, a->ai_addrlen) != 0 || listen(listen_fd, SOMAXCONN) != 0) {
      bind_error = std::strerror(errno);
      CloseFd(listen_fd);
      listen_fd = -1;
    }
  }
  freeaddrinfo(found);
  if (listen_fd < 0) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", address, ": ", bind_error,
                                               " (address in use, or not of this host?)"));
  }
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof(bound);
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    CloseFd(listen_fd);
    return absl::UnavailableError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(handlers), options, listen_fd, wake_fd, bound_port));
  server->thread_ = std::make_unique<std::thread>([self = server.get()] { self->Serve(); });
  return server;
}

void HttpServer::Serve() {
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<pollfd> polled;
  while (true) {
    const absl::Time now = absl::Now();
    // Whoever missed its deadline goes: a stalled request, an idle keep-alive, a slow reader.
    connections.erase(std::remove_if(connections.begin(), connections.end(),
                                     [now](const auto& c) { return c->deadline <= now; }),
                      connections.end());
    polled.clear();
    polled.push_back({wake_fd_, POLLIN, 0});
    polled.push_back({listen_fd_, POLLIN, 0});
    absl::Time next_deadline = absl::InfiniteFuture();
    for (const auto& c : connections) {
      polled.push_back({c->fd, static_cast<short>(c->out.empty() ? POLLIN : POLLOUT), 0});
      next_deadline = std::min(next_deadline, c->deadline);
    }
    const int timeout_ms =
        next_deadline == absl::InfiniteFuture()
            ? -1
            : static_cast<int>(absl::ToInt64Milliseconds(next_deadline - now)) + 1;
    if (poll(polled.data(), polled.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      PLOG(ERROR) << "[http] poll; stopped serving";
      return;
    }
    if (polled[0].revents != 0) return;  // the destructor's wake
    const absl::Time woke = absl::Now();
    // `connections` lines up with polled[2...]: accepting comes after.
    std::vector<std::unique_ptr<Connection>> kept;
    for (size_t i = 0; i < connections.size(); ++i) {
      const short events = polled[i + 2].revents;
      Connection& c = *connections[i];
      bool keep = true;
      if ((events & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        keep = false;  // reset, or closed both ways: nobody to answer
      } else if ((events & POLLOUT) != 0) {
        keep = OnWritable(c, woke);
      } else if ((events & POLLIN) != 0) {
        keep = OnReadable(c, woke);
      }
      if (keep) kept.push_back(std::move(connections[i]));
    }
    connections.swap(kept);
    if (polled[1].revents != 0) {
      while (true) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN: none left (or the client went already)
        if (connections.size() >= options_.max_connections) {
          // The one that has waited longest makes room: a probe always gets in.
          auto oldest = std::min_element(
              connections.begin(), connections.end(),
              [](const auto& x, const auto& y) { return x->deadline < y->deadline; });
          connections.erase(oldest);
        }
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->deadline = woke + options_.request_timeout;
        connections.push_back(std::move(c));
      }
    }
  }
}

bool HttpServer::OnReadable(Connection& c, absl::Time now) {
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      if (c.draining) continue;
      c.in.append(buffer, static_cast<size_t>(n));
      if (c.in.size() > 2 * kMaxRequestHead) break;  // enough to judge; the rest waits
      continue;
    }
    if (n == 0) {
      c.peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;  // reset by the peer
  }
  if (c.draining) return !c.peer_closed;
  if (!AnswerRequests(c, now)) return false;
  // A client that half-closed gets the answers to what it sent, and then the connection ends.
  return !c.peer_closed || !c.out.empty();
}

bool HttpServer::OnWritable(Connection& c, absl::Time now) {
  while (c.written < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
    if (n > 0) {
      c.written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // the rest later
    return false;
  }
  c.out.clear();
  c.written = 0;
  if (c.peer_closed) return false;
  if (c.close_after_write) {
    shutdown(c.fd, SHUT_WR);
    c.draining = true;
    c.in.clear();
    c.deadline = now + options_.request_timeout;  // for the client to close its side
    return true;
  }
  c.deadline = now + options_.request_timeout;  // for the next request
  return AnswerRequests(c, now);  // one pipelined behind it
}

bool HttpServer::AnswerRequests(Connection& c, absl::Time now) {
  if (!c.out.empty()) return true;  // one answer at a time
  const size_t end = c.in.find(kEndOfHead);
  if (end == std::string::npos || end > kMaxRequestHead) {
    if (end == std::string::npos && c.in.size() <= kMaxRequestHead) return true;  // more to come
    c.out = Serialize(Refusal(431, "the request's head is over 8 KiB"), false);
    c.close_after_write = true;
  } else {
    const absl::string_view head(c.in.data(), end);
    std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
    std::vector<absl::string_view> request_line = absl::StrSplit(lines[0], ' ');
    Answer answer;
    bool head_only = false;
    if (request_line.size() != 3 || request_line[1].empty() || request_line[1][0] != '/' ||
        !absl::StartsWith(request_line[2], "HTTP/")) {
      answer = Refusal(400, "not an HTTP request");
    } else if (!absl::StartsWith(request_line[2], "HTTP/1.")) {
      answer = Refusal(505, "HTTP/1.x only");
    } else {
      bool keep_alive = request_line[2] != "HTTP/1.0";
      bool has_body = false;
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = lines[i].find(':');
        const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
        const std::string value = absl::AsciiStrToLower(absl::StripAsciiWhitespace(
            colon == absl::string_view::npos ? absl::string_view() : lines[i].substr(colon + 1)));
        if (name == "connection") keep_alive = value == "keep-alive" ||
                                               (keep_alive && value != "close");
        if (name == "transfer-encoding" || (name == "content-length" && value != "0")) {
          has_body = true;
        }
      }
      const absl::string_view method = request_line[0];
      const absl::string_view path =
          request_line[1].substr(0, request_line[1].find('?'));  // no parameters are used
      head_only = method == "HEAD";
      if (has_body) {
        answer = Refusal(400, "these endpoints take no request body");
      } else if (method != "GET" && method != "HEAD") {
        answer = Refusal(405, "GET or HEAD only");
        answer.allow = "GET, HEAD";
      } else if (path == "/metrics") {
        answer.content_type = "text/plain; version=0.0.4; charset=utf-8";
        answer.body = handlers_.metrics();
      } else if (path == "/healthz") {
        answer.body = "ok\n";
      } else if (path == "/readyz") {
        auto [ready, reason] = handlers_.ready();
        answer.status = ready ? 200 : 503;
        answer.body = reason + "\n";
      } else {
        answer.status = 404;
        answer.body = "not found: the pages are /metrics, /healthz and /readyz\n";
      }
      answer.close = answer.close || !keep_alive;
    }
    c.close_after_write = answer.close;
    c.out = Serialize(answer, head_only);
    c.in.erase(0, end + kEndOfHeadSize);
  }
  c.written = 0;
  c.deadline = now + options_.request_timeout;  // for taking the answer
  return OnWritable(c, now);
}

}  // namespace kafka_sidecar::sidecar
