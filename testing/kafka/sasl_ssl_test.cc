// The sidecar on a SASL_SSL listener of Apache Kafka itself: SCRAM-SHA-512 over TLS, with a
// CA and a broker certificate this test makes with openssl (PEM on the broker side), ACLs
// enforced by Kafka's StandardAuthorizer. On Kafka 4.x the mechanism is PLAIN (still over
// TLS): librdkafka before 2.6.1 builds SCRAM's final message with the nonce twice, which
// Kafka 4.x refuses as invalid credentials (librdkafka issue 4895; see docs/operator-guide.md). Configured through --kafka_config with an @file for
// the secret, it produces and consumes, and the password shows in no log, page or error; a
// SCRAM user without ACLs is refused with PERMISSION_DENIED on both paths.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "testing/consume_client.h"
#include "testing/kafka/real_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/probes.h"
#include "testing/produce_stream_client.h"
#include "testing/sidecar_process.h"
#include "testing/subprocess.h"

namespace kafka_sidecar::testing {
namespace {

using kafka_sidecar::v1::ProduceRequest;
using kafka_sidecar::v1::ProduceResponse;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAlicePassword[] = "alice-Pa55word-7f3c";
constexpr char kMalloryPassword[] = "mallory-Pa55word-91ad";

std::string TempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/tls-XXXXXX");
  return mkdtemp(dir.data()) != nullptr ? dir : "";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// Runs a command to its end; its output on failure.
::testing::AssertionResult Run(const std::vector<std::string>& argv, const std::string& log) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv, log);
  if (!process.ok()) return ::testing::AssertionFailure() << process.status();
  absl::StatusOr<int> code = (*process)->Wait(absl::Seconds(60));
  if (code.ok() && *code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << argv[0] << " " << argv[1] << " failed:\n"
                                       << (*process)->Log();
}

// A CA, and a certificate it signed for the broker on 127.0.0.1: ca.pem, and broker.pem holding
// the broker's private key (PKCS#8) and its certificate, as Kafka's PEM keystore wants them.
void MakeCertificates(const std::string& dir) {
  const std::string openssl = "/usr/bin/openssl";
  const std::string log = dir + "/openssl.log";
  ASSERT_TRUE(Run({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                   "-subj", "/CN=kafka-sidecar test CA", "-keyout", dir + "/ca.key", "-out",
                   dir + "/ca.pem"},
                  log));
  ASSERT_TRUE(Run({openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                   "-keyout", dir + "/broker.key", "-out", dir + "/broker.csr"},
                  log));
  WriteFile(dir + "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ASSERT_TRUE(Run({openssl, "x509", "-req", "-days", "2", "-in", dir + "/broker.csr", "-CA",
                   dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-extfile",
                   dir + "/san.ext", "-out", dir + "/broker.crt"},
                  log));
  std::ifstream key(dir + "/broker.key");
  std::ifstream cert(dir + "/broker.crt");
  std::string both((std::istreambuf_iterator<char>(key)), std::istreambuf_iterator<char>());
  both.append((std::istreambuf_iterator<char>(cert)), std::istreambuf_iterator<char>());
  WriteFile(dir + "/broker.pem", both);
}

// Grants `principal` `operations` on the topic or group `name`, through the PLAINTEXT listener
// (whose ANONYMOUS principal is a super user here).
::testing::AssertionResult Allow(const std::string& bootstrap, rd_kafka_ResourceType_t type,
                                 const std::string& name, const std::string& principal,
                                 const std::vector<rd_kafka_AclOperation_t>& operations) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof(error));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (rk == nullptr) return ::testing::AssertionFailure() << error;
  std::vector<rd_kafka_AclBinding_t*> acls;
  for (rd_kafka_AclOperation_t operation : operations) {
    acls.push_back(rd_kafka_AclBinding_new(type, name.c_str(), RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                           principal.c_str(), "*", operation,
                                           RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, error,
                                           sizeof(error)));
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateAcls(rk, acls.data(), acls.size(), nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  if (event == nullptr) {
    result = ::testing::AssertionFailure() << "CreateAcls got no answer";
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = ::testing::AssertionFailure() << rd_kafka_event_error_string(event);
  } else {
    size_t count = 0;
    const rd_kafka_acl_result_t** results =
        rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event), &count);
    for (size_t i = 0; i < count; ++i) {
      if (const rd_kafka_error_t* e = rd_kafka_acl_result_error(results[i]); e != nullptr) {
        result = ::testing::AssertionFailure() << rd_kafka_error_string(e);
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  for (rd_kafka_AclBinding_t* acl : acls) rd_kafka_AclBinding_destroy(acl);
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy(rk);
  return result;
}

class SaslSslTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    ASSERT_FALSE(dir_.empty());
    MakeCertificates(dir_);
    if (HasFatalFailure()) return;
    RealKafka::Options options;
    options.listeners = {{"SECURE", "SASL_SSL"}};
    options.properties = {
        {"sasl.enabled.mechanisms", mechanism_},
        {"listener.name.secure.ssl.keystore.type", "PEM"},
        {"listener.name.secure.ssl.keystore.location", dir_ + "/broker.pem"},
        {"authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"},
        // The cluster's own PLAINTEXT and CONTROLLER connections, and the test's plain clients.
        {"super.users", "User:ANONYMOUS"},
    };
    if (mechanism_ == "PLAIN") {
      options.properties["listener.name.secure.plain.sasl.jaas.config"] = absl::StrCat(
          "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"",
          kAlicePassword, "\" user_mallory=\"", kMalloryPassword, "\";");
    } else {
      options.properties["listener.name.secure.scram-sha-512.sasl.jaas.config"] =
          "org.apache.kafka.common.security.scram.ScramLoginModule required;";
      options.format_args = {
          "--add-scram", absl::StrCat("SCRAM-SHA-512=[name=alice,password=", kAlicePassword, "]"),
          "--add-scram",
          absl::StrCat("SCRAM-SHA-512=[name=mallory,password=", kMalloryPassword, "]")};
    }
    absl::StatusOr<std::unique_ptr<RealKafka>> kafka = RealKafka::Start(options);
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
    ASSERT_TRUE(CreateTopic(kafka_->bootstrap(), "secure", 3, 1).ok());
    ASSERT_TRUE(Allow(kafka_->bootstrap(), RD_KAFKA_RESOURCE_TOPIC, "secure", "User:alice",
                      {RD_KAFKA_ACL_OPERATION_READ, RD_KAFKA_ACL_OPERATION_WRITE,
                       RD_KAFKA_ACL_OPERATION_DESCRIBE}));
    ASSERT_TRUE(Allow(kafka_->bootstrap(), RD_KAFKA_RESOURCE_GROUP, "secure-readers",
                      "User:alice", {RD_KAFKA_ACL_OPERATION_READ}));
  }

  // A sidecar on the SASL_SSL listener as `user`, its password in a properties file.
  std::unique_ptr<SidecarProcess> StartAs(const std::string& user, const std::string& password) {
    const std::string secret = absl::StrCat(dir_, "/", user, ".properties");
    WriteFile(secret, absl::StrCat("# the sidecar's Kafka credentials\nsasl.password=", password,
                                   "\n"));
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
        kafka_->bootstrap("SECURE"),
        {absl::StrCat("--kafka_config=security.protocol=SASL_SSL,sasl.mechanisms=", mechanism_,
                      ",sasl.username=", user, ",ssl.ca.location=", dir_, "/ca.pem,",
                      "fetch.wait.max.ms=10,@", secret)},
        user);
    EXPECT_TRUE(sidecar.ok()) << sidecar.status();
    return sidecar.ok() ? *std::move(sidecar) : nullptr;
  }

  const std::string mechanism_ =
      RealKafka::DefaultLine() == "3.9" ? "SCRAM-SHA-512" : "PLAIN";
  std::string dir_;
  std::unique_ptr<RealKafka> kafka_;
};

ProduceRequest Record(int i) {
  ProduceRequest request;
  request.set_topic("secure");
  request.set_key(absl::StrCat("key-", i));
  request.set_value(absl::StrCat("value-", i));
  request.set_request_id(i);
  return request;
}

TEST_F(SaslSslTest, AnAuthorizedUserProducesAndConsumesAndThePasswordShowsNowhere) {
  auto sidecar = StartAs("alice", kAlicePassword);
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();
  std::vector<ProduceRequest> requests;
  for (int i = 0; i < 50; ++i) requests.push_back(Record(i));
  ProduceStreamResult produced = RunProduceStream(*stub, requests);
  ASSERT_TRUE(produced.status.ok()) << produced.status.error_message();
  ASSERT_EQ(produced.responses.size(), requests.size());
  for (const ProduceResponse& r : produced.responses) {
    EXPECT_FALSE(r.has_error()) << r.error().message();
  }
  absl::StatusOr<std::vector<ConsumedRecord>> read =
      ReadTopic(kafka_->bootstrap(), "secure", requests.size(), absl::Seconds(30));
  ASSERT_TRUE(read.ok()) << read.status();

  ConsumeClient consumer(*stub, absl::Seconds(60));
  ASSERT_TRUE(consumer.Subscribe("secure-readers", {"secure"}));
  EXPECT_EQ(consumer.Receive(requests.size(), /*ack=*/true).size(), requests.size());
  consumer.Cancel();

  EXPECT_THAT(sidecar->process().Log(), Not(HasSubstr(kAlicePassword)));
  for (const std::string path : {"/metrics", "/healthz", "/readyz"}) {
    EXPECT_THAT(HttpGet(sidecar->metrics_port(), path).second, Not(HasSubstr(kAlicePassword)))
        << path;
  }
}

TEST_F(SaslSslTest, AUserWithoutAclsIsDeniedOnBothPathsAndThePasswordShowsNowhere) {
  auto sidecar = StartAs("mallory", kMalloryPassword);
  ASSERT_NE(sidecar, nullptr);
  auto stub = sidecar->NewStub();

  ProduceStreamResult produced = RunProduceStream(*stub, {Record(0)}, 90);
  ASSERT_TRUE(produced.status.ok()) << produced.status.error_message();
  ASSERT_EQ(produced.responses.size(), 1u);
  const kafka_sidecar::v1::Error& error = produced.responses[0].error();
  EXPECT_EQ(error.code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED))
      << error.message();
  EXPECT_THAT(error.message(), HasSubstr("secure"));
  EXPECT_THAT(error.message(), Not(HasSubstr(kMalloryPassword)));

  ConsumeClient consumer(*stub, absl::Seconds(90));
  ASSERT_TRUE(consumer.Subscribe("mallory-group", {"secure"}));
  grpc::Status end = consumer.AwaitEnd();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::PERMISSION_DENIED) << end.error_message();
  EXPECT_THAT(end.error_message(), Not(HasSubstr(kMalloryPassword)));

  EXPECT_THAT(sidecar->process().Log(), Not(HasSubstr(kMalloryPassword)));
  EXPECT_THAT(HttpGet(sidecar->metrics_port(), "/metrics").second,
              Not(HasSubstr(kMalloryPassword)));
}

}  // namespace
}  // namespace kafka_sidecar::testing
