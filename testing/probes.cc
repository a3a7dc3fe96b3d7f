#include "testing/probes.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "proto/health.grpc.pb.h"

namespace kafka_sidecar::testing {

bool WaitForServing(const std::string& target, absl::Duration timeout) {
  return WaitForHealth(target, "", /*serving=*/true, timeout);
}

bool WaitForHealth(const std::string& target, const std::string& service, bool serving,
                   absl::Duration timeout) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(true);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  auto watch = health->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse response;
  while (watch->Read(&response)) {
    if ((response.status() == grpc::health::v1::HealthCheckResponse::SERVING) == serving) {
      context.TryCancel();
      watch->Finish();
      return true;
    }
  }
  watch->Finish();
  return false;
}

std::pair<int, std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result result = client.Get(path.c_str());
  if (!result) return {-1, httplib::to_string(result.error())};
  return {result->status, result->body};
}

int64_t MetricValue(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      int64_t value = -1;
      if (absl::SimpleAtoi(line, &value)) return value;
    }
  }
  return -1;
}

}  // namespace kafka_sidecar::testing
