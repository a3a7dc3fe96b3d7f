// mock_kafka: an in-memory Kafka cluster (librdkafka's mock brokers) on loopback, for kcat,
// demos and manual tests. Prints its bootstrap servers on the first line of stdout, then runs
// until SIGTERM or SIGINT.

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "broker/embedded_cluster.h"
#include "sidecar/server/signals.h"

DEFINE_int32(brokers, 3, "number of brokers");
DEFINE_string(topics, "", "topics to create, as name:partitions,name:partitions");

int main(int argc, char** argv) {
  kafka_sidecar::sidecar::BlockShutdownSignals();
  gflags::SetUsageMessage("an in-memory Kafka cluster on loopback; prints its bootstrap servers");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  auto cluster = kafka_sidecar::broker::EmbeddedCluster::Create(FLAGS_brokers);
  if (!cluster.ok()) {
    std::cerr << "mock_kafka: " << cluster.status() << "\n";
    return 1;
  }
  for (absl::string_view item : absl::StrSplit(FLAGS_topics, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> spec = absl::StrSplit(item, absl::MaxSplits(':', 1));
    int partitions = 1;
    if (spec.first.empty() || (!spec.second.empty() && !absl::SimpleAtoi(spec.second, &partitions))) {
      std::cerr << "mock_kafka: --topics: '" << item << "' is not name:partitions\n";
      return 2;
    }
    if (absl::Status created = (*cluster)->CreateTopic(spec.first, partitions); !created.ok()) {
      std::cerr << "mock_kafka: " << created << "\n";
      return 1;
    }
  }
  std::cout << (*cluster)->bootstrap_servers() << std::endl;
  kafka_sidecar::sidecar::WaitForShutdownSignal();
  return 0;
}
