// What compression reaches the broker's log when the sidecar is told to compress, read from
// the log segment itself with Kafka's DumpLogSegments, on Kafka 3.9 and 4.1 (the BUILD file
// runs this file on both). librdkafka 2.0.2 compresses gzip, snappy and lz4 only for brokers
// that list Produce v2 (librdkafka issue 4956); Kafka 4.x removed v0-v2 but still lists them
// (KAFKA-18659), so every codec arrives as asked on both lines, and the sidecar's check at
// start finds nothing to warn about (broker/compression_check_test.cc covers the warning).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "testing/kafka/shared_kafka.h"
#include "testing/kafka_test_client.h"
#include "testing/produce_stream_client.h"
#include "testing/sidecar_process.h"

namespace kafka_sidecar::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);

// The codecs of the record batches in partition 0's first segment of `topic`, as
// DumpLogSegments prints them ("... compresscodec: gzip ...").
std::set<std::string> BatchCodecs(const std::string& topic) {
  RealKafka& kafka = SharedKafka::Get();
  absl::StatusOr<std::string> dump = kafka.RunTool(
      0, "kafka.tools.DumpLogSegments",
      {"--files", absl::StrCat(kafka.data_dir(0), "/", topic, "-0/00000000000000000000.log")});
  EXPECT_TRUE(dump.ok()) << dump.status();
  std::set<std::string> codecs;
  if (!dump.ok()) return codecs;
  constexpr absl::string_view kField = "compresscodec: ";
  for (absl::string_view line : absl::StrSplit(*dump, '\n')) {
    const size_t at = line.find(kField);
    if (at == absl::string_view::npos) continue;
    absl::string_view codec = line.substr(at + kField.size());
    codec = codec.substr(0, codec.find_first_of(" \t"));
    codecs.insert(absl::AsciiStrToLower(codec));
  }
  return codecs;
}

TEST(RealKafkaCompressionTest, WhatReachesTheLogForEachCodec) {
  RealKafka& kafka = SharedKafka::Get();
  constexpr char kWarning[] = "has no effect on this cluster";
  for (const std::string codec : {"gzip", "snappy", "lz4", "zstd"}) {
    SCOPED_TRACE(codec);
    const std::string topic = "codec-" + codec;
    ASSERT_TRUE(CreateTopic(kafka.bootstrap(), topic, 1, 1).ok());
    absl::StatusOr<std::unique_ptr<SidecarProcess>> sidecar = SidecarProcess::Start(
        kafka.bootstrap(), {absl::StrCat("--kafka_config=compression.type=", codec)}, codec);
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    auto stub = (*sidecar)->NewStub();
    kafka_sidecar::v1::ProduceBatch batch;
    for (int i = 0; i < 200; ++i) {
      auto* record = batch.add_records();
      record->set_topic(topic);
      record->set_value(std::string(1000, 'a' + i % 3));  // compresses well
    }
    BatchStreamResult result = RunProduceBatchStream(*stub, {batch});
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    ASSERT_EQ(result.results.size(), 1u);
    for (const auto& r : result.results[0].results()) ASSERT_FALSE(r.has_error());

    const std::set<std::string> codecs = BatchCodecs(topic);
    EXPECT_EQ(codecs, std::set<std::string>{codec});
    const std::string log = (*sidecar)->process().Log();
    EXPECT_THAT(log, HasSubstr(absl::StrCat("compression.type=", codec,
                                            ": the brokers' Produce versions (0..")));
    EXPECT_THAT(log, Not(HasSubstr(kWarning)));
    std::cout << "Kafka " << kafka.line() << ", compression.type=" << codec << ": batches "
              << (codecs.empty() ? "?" : *codecs.begin()) << "\n";
  }
}

}  // namespace
}  // namespace kafka_sidecar::testing
