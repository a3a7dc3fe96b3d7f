#include "sidecar/server/consumer_factory.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/rdkafka_consumer.h"

namespace kafka_sidecar::sidecar {

ConsumerFactory RdKafkaConsumerFactory(const SidecarConfig& config, std::string bootstrap,
                                       broker::KafkaSettings settings) {
  broker::KafkaSettings own = {{"partition.assignment.strategy", config.assignment_strategy}};
  own.insert(own.end(), settings.begin(), settings.end());
  // The subscription drains librdkafka's prefetch into its own queue as it comes and pauses
  // the partitions at its bound; librdkafka's own bounds (where it stops fetching a partition
  // for up to a second) are half of it, reached only when draining falls that far behind. The
  // two together are the memory budget: a stalled app holds the queue full, and the prefetch
  // fills before the pause drops it.
  const int prefetch = std::max(config.max_buffered_records / 2, 1000);
  const int prefetch_kbytes = std::max(config.max_buffered_mib * 1024 / 2, 1024);
  return [bootstrap = std::move(bootstrap), settings = std::move(own), prefetch, prefetch_kbytes,
          instance = config.group_instance_id](const std::string& group, int member)
             -> absl::StatusOr<std::unique_ptr<broker::GroupConsumer>> {
    broker::RdKafkaConsumerOptions options{bootstrap, group, prefetch, prefetch_kbytes,
                                           settings};
    if (!instance.empty()) {
      options.settings.insert(
          options.settings.begin(),
          {"group.instance.id", member == 0 ? instance : absl::StrCat(instance, "-", member)});
    }
    return broker::RdKafkaConsumer::Create(std::move(options));
  };
}

}  // namespace kafka_sidecar::sidecar
