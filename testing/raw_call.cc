#include "testing/raw_call.h"

#include <grpcpp/generic/generic_stub.h>

#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace kafka_sidecar::testing {
namespace {

grpc::ByteBuffer BytesOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Writes the requests one after the other and reads whatever comes back, until the server
// ends the call.
class RawStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RawStream(const std::vector<std::string>& requests) {
    for (const std::string& request : requests) requests_.push_back(BytesOf(request));
  }

  RawCallResult Run(grpc::GenericStub& stub, grpc::ClientContext& context,
                    const std::string& method) {
    stub.PrepareBidiStreamingCall(&context, method, grpc::StubOptions(), this);
    StartRead(&response_);
    WriteNext();
    StartCall();
    done_.WaitForNotification();
    return result_;
  }

 private:
  void WriteNext() {
    if (next_ < requests_.size()) StartWrite(&requests_[next_++]);
  }
  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    ++result_.responses;
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    result_.status = status;
    done_.Notify();
  }

  std::vector<grpc::ByteBuffer> requests_;
  size_t next_ = 0;
  grpc::ByteBuffer response_;
  RawCallResult result_;
  absl::Notification done_;
};

std::unique_ptr<grpc::GenericStub> StubFor(const std::string& target) {
  return std::make_unique<grpc::GenericStub>(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
}

}  // namespace

RawCallResult RawUnaryCall(const std::string& target, const std::string& method,
                           const std::string& request, absl::Duration timeout) {
  std::unique_ptr<grpc::GenericStub> stub = StubFor(target);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  const grpc::ByteBuffer request_bytes = BytesOf(request);
  grpc::ByteBuffer response;
  RawCallResult result;
  absl::Notification done;
  stub->UnaryCall(&context, method, grpc::StubOptions(), &request_bytes, &response,
                  [&](grpc::Status status) {
                    result.status = std::move(status);
                    done.Notify();
                  });
  done.WaitForNotification();
  if (result.status.ok()) result.responses = 1;
  return result;
}

RawCallResult RawStreamCall(const std::string& target, const std::string& method,
                            const std::vector<std::string>& requests, absl::Duration timeout) {
  std::unique_ptr<grpc::GenericStub> stub = StubFor(target);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  RawStream stream(requests);
  return stream.Run(*stub, context, method);
}

}  // namespace kafka_sidecar::testing
