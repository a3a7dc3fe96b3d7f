// kafka_server: Apache Kafka itself (the jars tools/fetch_kafka.sh cached) as a KRaft cluster on
// loopback, for tools/bench.sh --kafka=real and manual tries. Prints its bootstrap servers on
// the first line of stdout once it answers and the topics exist, then runs until SIGTERM or
// SIGINT, and kills its nodes and removes their files on the way out.

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "sidecar/server/signals.h"
#include "testing/kafka/real_kafka.h"
#include "testing/kafka_test_client.h"

DEFINE_int32(nodes, 1, "number of nodes (each a broker and a controller)");
DEFINE_string(line, "3.9", "the Kafka line: 3.9 or 4.1");
DEFINE_string(topics, "", "topics to create, as name:partitions,name:partitions");

int main(int argc, char** argv) {
  kafka_sidecar::sidecar::BlockShutdownSignals();
  gflags::SetUsageMessage("Apache Kafka on loopback; prints its bootstrap servers");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  std::vector<std::pair<std::string, int>> topics;
  for (absl::string_view item : absl::StrSplit(FLAGS_topics, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> spec = absl::StrSplit(item, absl::MaxSplits(':', 1));
    int partitions = 1;
    if (spec.first.empty() ||
        (!spec.second.empty() && !absl::SimpleAtoi(spec.second, &partitions))) {
      std::cerr << "kafka_server: --topics: '" << item << "' is not name:partitions\n";
      return 2;
    }
    topics.emplace_back(spec.first, partitions);
  }
  kafka_sidecar::testing::RealKafka::Options options;
  options.nodes = FLAGS_nodes;
  options.line = FLAGS_line;
  auto kafka = kafka_sidecar::testing::RealKafka::Start(options);
  if (!kafka.ok()) {
    std::cerr << "kafka_server: " << kafka.status() << "\n";
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    const int replicas = std::min(FLAGS_nodes, 3);
    if (absl::Status created = kafka_sidecar::testing::CreateTopic((*kafka)->bootstrap(), name,
                                                                   partitions, replicas);
        !created.ok()) {
      std::cerr << "kafka_server: " << created << "\n";
      return 1;
    }
  }
  LOG(INFO) << "Kafka " << (*kafka)->line() << " started in " << (*kafka)->start_time();
  std::cout << (*kafka)->bootstrap() << std::endl;
  kafka_sidecar::sidecar::WaitForShutdownSignal();
  return 0;
}
