#include "sidecar/server/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "testing/probes.h"

namespace kafka_sidecar::sidecar {
namespace {

using ::kafka_sidecar::testing::HttpGet;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A plain TCP client that sends what the test says, byte for byte.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { close(fd_); }

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // Reads until `done` holds for what came, the server closes, or `timeout` passes.
  std::string ReadUntil(const std::function<bool(const std::string&)>& done,
                        absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done(received_) && !closed_) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        closed_ = true;
      } else {
        received_.append(buffer, static_cast<size_t>(n));
      }
    }
    return received_;
  }
  // Reads until the server closes the connection (true) or `timeout` passes (false).
  bool WaitForClose(absl::Duration timeout) {
    ReadUntil([](const std::string&) { return false; }, timeout);
    return closed_;
  }
  // Reads until `answers` whole answers came (each ends with its body, here always "\n").
  std::string ReadAnswers(int answers, absl::Duration timeout = absl::Seconds(10)) {
    return ReadUntil(
        [answers](const std::string& got) {
          int seen = 0;
          for (size_t at = got.find("HTTP/1.1 "); at != std::string::npos;
               at = got.find("HTTP/1.1 ", at + 1)) {
            ++seen;
          }
          return seen >= answers && absl::EndsWith(got, "\n") &&
                 got.rfind("\r\n\r\n") != std::string::npos;
        },
        timeout);
  }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServer::Options options = {}) {
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        "127.0.0.1:0",
        {[this] { return absl::StrCat("kafka_sidecar_scrapes_total ", ++scrapes_, "\n"); },
         [this] { return std::make_pair(ready_.load(), std::string(ready_ ? "ready" : "joining")); }},
        options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  int port() const { return server_->port(); }

  std::atomic<int> scrapes_{0};
  std::atomic<bool> ready_{false};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesThePages) {
  Start();
  EXPECT_EQ(HttpGet(port(), "/healthz"), std::make_pair(200, std::string("ok\n")));
  EXPECT_EQ(HttpGet(port(), "/readyz"), std::make_pair(503, std::string("joining\n")));
  ready_ = true;
  EXPECT_EQ(HttpGet(port(), "/readyz"), std::make_pair(200, std::string("ready\n")));
  EXPECT_EQ(HttpGet(port(), "/metrics?x=1"),
            std::make_pair(200, std::string("kafka_sidecar_scrapes_total 1\n")));
  auto [code, body] = HttpGet(port(), "/nothing");
  EXPECT_EQ(code, 404);
  EXPECT_THAT(body, HasSubstr("/metrics"));
}

TEST_F(HttpServerTest, AnswersKeepAliveAndPipelinedRequestsInOrder) {
  Start();
  RawConnection c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\n"));
  std::string got = c.ReadAnswers(2);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(got, HasSubstr("\r\n\r\nok\nHTTP/1.1 200 OK\r\n"));
  // HEAD: the length of the page, without the page; the connection stays for more.
  EXPECT_FALSE(absl::StrContains(got, "scrapes_total"));
  ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(c.ReadAnswers(3), HasSubstr("kafka_sidecar_scrapes_total 2\n"));
}

TEST_F(HttpServerTest, RefusesWhatIsNotARequestForAPage) {
  Start();
  struct Case {
    std::string request;
    std::string status_line;
  };
  const std::vector<Case> cases = {
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
       "HTTP/1.1 400 Bad Request"},  // a TLS hello
      {"GET\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
      {"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"},
      {"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 400 Bad Request"},
      {absl::StrCat("GET /metrics HTTP/1.1\r\nX-Big: ", std::string(9000, 'x'), "\r\n\r\n"),
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {absl::StrCat("GET /", std::string(20000, 'x')), "HTTP/1.1 431 Request Header Fields"},
  };
  for (const Case& c : cases) {
    RawConnection connection(port());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.Send(c.request));
    EXPECT_THAT(connection.ReadAnswers(1), StartsWith(c.status_line)) << c.request.substr(0, 40);
    // What follows such a request cannot be trusted to be one: the server closes.
    EXPECT_TRUE(connection.WaitForClose(absl::Seconds(10))) << c.request.substr(0, 40);
  }
  EXPECT_EQ(HttpGet(port(), "/healthz").first, 200);
}

TEST_F(HttpServerTest, ClosesARequestThatDoesNotArriveWholeInTime) {
  Start({.request_timeout = absl::Milliseconds(300), .max_connections = 64});
  const absl::Time opened = absl::Now();
  RawConnection stalled(port());
  RawConnection idle(port());
  ASSERT_TRUE(stalled.connected() && idle.connected());
  // A byte every 50 ms does not move the deadline: the request as a whole has 300 ms (a
  // server whose timeout counted from the last byte would never close it: the hang guard).
  ASSERT_TRUE(stalled.Send("GET /"));
  bool closed = false;
  for (const absl::Time guard = absl::Now() + absl::Seconds(20); !closed && absl::Now() < guard;) {
    stalled.Send("m");
    closed = stalled.WaitForClose(absl::Milliseconds(50));
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(idle.WaitForClose(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - opened, absl::Milliseconds(300));
  EXPECT_EQ(HttpGet(port(), "/healthz").first, 200);
}

TEST_F(HttpServerTest, StalledConnectionsDoNotHoldUpProbes) {
  Start({.request_timeout = absl::Seconds(120), .max_connections = 64});
  // Connections that send half a request and a byte now and then, as a slow or broken scraper
  // would, stay open while the probes come and go.
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 48; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(port()));
    ASSERT_TRUE(stalled.back()->connected());
    ASSERT_TRUE(stalled.back()->Send("GET /metrics HTTP/1.1\r\nHo"));
  }
  for (int probe = 0; probe < 10; ++probe) {
    EXPECT_EQ(HttpGet(port(), "/healthz").first, 200) << probe;
    EXPECT_EQ(HttpGet(port(), "/readyz").first, 503) << probe;
    EXPECT_EQ(HttpGet(port(), "/metrics").first, 200) << probe;
    for (auto& s : stalled) ASSERT_TRUE(s->Send("s"));
  }
  // They were kept all along: each gets its answer once its request is whole.
  for (auto& s : stalled) {
    ASSERT_TRUE(s->Send("t: x\r\n\r\n"));
    EXPECT_THAT(s->ReadAnswers(1), StartsWith("HTTP/1.1 200 OK"));
  }
}

TEST_F(HttpServerTest, ANewConnectionPastTheLimitClosesTheOneThatWaitedLongest) {
  Start({.request_timeout = absl::Seconds(60), .max_connections = 2});
  RawConnection first(port());
  ASSERT_TRUE(first.connected());
  ASSERT_TRUE(first.Send("GET /"));
  ASSERT_FALSE(first.WaitForClose(absl::Milliseconds(50)));
  RawConnection second(port());
  RawConnection third(port());
  ASSERT_TRUE(second.Send("GET /healthz HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(second.ReadAnswers(1), StartsWith("HTTP/1.1 200 OK"));
  ASSERT_TRUE(third.Send("GET /healthz HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(third.ReadAnswers(1), StartsWith("HTTP/1.1 200 OK"));
  EXPECT_TRUE(first.WaitForClose(absl::Seconds(10)));
}

TEST(HttpServerStartTest, RefusesAddressesItCannotServe) {
  HttpServer::Handlers handlers{[] { return std::string(); },
                                [] { return std::make_pair(true, std::string()); }};
  for (const char* address : {"nonsense", "127.0.0.1:http", "127.0.0.1:70000"}) {
    absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(address, handlers);
    EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << address << ": " << server.status();
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> taken = HttpServer::Start("127.0.0.1:0", handlers);
  ASSERT_TRUE(taken.ok()) << taken.status();
  absl::StatusOr<std::unique_ptr<HttpServer>> again =
      HttpServer::Start(absl::StrCat("127.0.0.1:", (*taken)->port()), handlers);
  EXPECT_TRUE(absl::IsUnavailable(again.status())) << again.status();
  EXPECT_THAT(again.status().message(), HasSubstr("in use"));
  // IPv6 loopback, in brackets.
  absl::StatusOr<std::unique_ptr<HttpServer>> v6 = HttpServer::Start("[::1]:0", handlers);
  EXPECT_TRUE(v6.ok() || absl::IsUnavailable(v6.status())) << v6.status();
}

}  // namespace
}  // namespace kafka_sidecar::sidecar
