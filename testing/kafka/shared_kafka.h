#ifndef KAFKA_SIDECAR_TESTING_KAFKA_SHARED_KAFKA_H_
#define KAFKA_SIDECAR_TESTING_KAFKA_SHARED_KAFKA_H_

#include <gtest/gtest.h>

#include <iostream>
#include <memory>

#include "testing/kafka/real_kafka.h"

namespace kafka_sidecar::testing {

// One single-node cluster for all the tests of a file, started before the first and killed
// after the last; each test uses topics and groups of its own. A file registers it with
//   const auto* const kKafka = ::testing::AddGlobalTestEnvironment(new SharedKafka);
// and its tests use SharedKafka::Get().
class SharedKafka : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RealKafka>> started = RealKafka::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    kafka_ = *std::move(started);
    current_ = kafka_.get();
    std::cout << "Kafka " << current_->line() << " started in " << current_->start_time() << "\n";
  }
  void TearDown() override {
    current_ = nullptr;
    kafka_.reset();
  }

  static RealKafka& Get() { return *current_; }

 private:
  static inline RealKafka* current_ = nullptr;
  std::unique_ptr<RealKafka> kafka_;
};

}  // namespace kafka_sidecar::testing

#endif  // KAFKA_SIDECAR_TESTING_KAFKA_SHARED_KAFKA_H_
