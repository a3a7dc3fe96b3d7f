#include "sidecar/server/consumer_factory.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/rdkafka_consumer.h"

namespace kafka_sidecar::sidecar {

ConsumerFactory RdKafkaConsumerFactory(const SidecarConfig& config, std::string bootstrap,
                                       broker::KafkaSettings settings) {
  broker::KafkaSettings own = {{"partition.assignment.strategy",
                                std::string(AssignmentStrategyName(config.assignment_strategy))}};
  own.insert(own.end(), settings.begin(), settings.end());
  const BufferBudget budget = SplitBufferBudget(config);
  const int prefetch = budget.prefetch_records;
  const int prefetch_kbytes = budget.prefetch_kbytes;
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
