#include "sidecar/consume/subscription_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/kafka_names.h"

namespace kafka_sidecar::sidecar {

SubscriptionRegistry::SubscriptionRegistry(SubscriptionOptions defaults, size_t max_subscriptions,
                                           ConsumerFactory factory,
                                           broker::Producer* dead_letters,
                                           broker::TopicCreator* topics, Clock& clock,
                                           ConsumeMetrics& metrics)
    : defaults_(std::move(defaults)),
      max_subscriptions_(max_subscriptions),
      factory_(std::move(factory)),
      dead_letters_(dead_letters),
      topics_(topics),
      clock_(clock),
      metrics_(metrics) {}

SubscriptionRegistry::~SubscriptionRegistry() {
  CloseAll(absl::ZeroDuration(), absl::UnavailableError("the sidecar is shutting down"));
}

uint64_t SubscriptionRegistry::NextStreamId() { return next_stream_id_++; }

namespace {

std::string DescribeRetry(const DeliveryPolicy& p) {
  if (p.min_backoff <= absl::ZeroDuration()) return "none (at once)";
  return absl::StrCat("min_backoff_ms=", absl::ToInt64Milliseconds(p.min_backoff),
                      " max_backoff_ms=", absl::ToInt64Milliseconds(p.max_backoff));
}

std::string DescribeDeadLetter(const DeliveryPolicy& p) {
  if (p.dead_letter_topic.empty()) return "none";
  return absl::StrCat("topic '", PrintableName(p.dead_letter_topic),
                      "' max_delivery_attempts=", p.max_delivery_attempts);
}

// FAILED_PRECONDITION naming the field where `asked` differs from what `subscription` runs
// with.
absl::Status PolicyMismatch(const Subscription& subscription, const DeliveryPolicy& asked) {
  const DeliveryPolicy& running = subscription.options().dispatch.policy;
  const bool retry = running.min_backoff != asked.min_backoff ||
                     running.max_backoff != asked.max_backoff;
  const std::string field = retry ? "subscribe.retry_policy" : "subscribe.dead_letter_policy";
  const std::string has = retry ? DescribeRetry(running) : DescribeDeadLetter(running);
  const std::string wants = retry ? DescribeRetry(asked) : DescribeDeadLetter(asked);
  return absl::FailedPreconditionError(absl::StrCat(
      field, ": the subscription of group '", PrintableName(subscription.options().group),
      "' to ", absl::StrJoin(subscription.options().topics, ","), " runs with ", has,
      ", which every stream of it shares; this stream asks for ", wants,
      ". Ask for the same policies, or subscribe with another group"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Subscription>> SubscriptionRegistry::Attach(
    const std::string& group, const std::vector<std::string>& topics,
    const DeliveryPolicy& policy, uint64_t stream_id, ConsumerStream* stream,
    uint32_t max_in_flight) {
  std::vector<std::string> sorted = topics;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  const std::string key = absl::StrCat(group, "\n", absl::StrJoin(sorted, ","));

  // Released after the lock: subscriptions that left their group (their threads are done).
  std::vector<std::shared_ptr<Subscription>> reaped;
  absl::MutexLock lock(&mu_);
  if (closing_) return absl::UnavailableError("the sidecar is shutting down");
  reaped = TakeClosed();
  auto it = subscriptions_.find(key);
  if (it != subscriptions_.end()) {
    if (it->second->options().dispatch.policy == policy) {
      if (it->second->Attach(stream_id, stream, max_in_flight)) return it->second;
    } else if (it->second->accepting()) {
      return PolicyMismatch(*it->second, policy);
    }
  }
  if (it != subscriptions_.end()) {
    // It is leaving the group right now (its poll thread finishes that); a new member takes
    // over.
    departing_.push_back(std::move(it->second));
    subscriptions_.erase(it);
  }
  // Those still leaving count: they hold their threads and connections until they are gone.
  if (subscriptions_.size() + departing_.size() >= max_subscriptions_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the sidecar holds its most subscriptions, ", max_subscriptions_,
        " (--max_subscriptions), each a Kafka group membership for one group and topic set; "
        "group '", PrintableName(group), "' would need another. Close streams of other "
        "groups, subscribe to a group and topics already in use, or raise the flag"));
  }

  if (!policy.dead_letter_topic.empty() && dead_letters_ == nullptr) {
    return absl::FailedPreconditionError(
        "subscribe.dead_letter_policy: this sidecar has no producer to write dead letters with");
  }
  if (topics_ != nullptr) {
    for (const std::string& topic : sorted) topics_->EnsureTopic(topic);
    if (!policy.dead_letter_topic.empty()) topics_->EnsureTopic(policy.dead_letter_topic);
  }
  // Member indexes of this group in use: by other topic sets, and by memberships still
  // leaving (a static member id must not be taken over while its owner still holds it).
  std::set<int> members;
  for (const auto& [other_key, other] : subscriptions_) {
    if (other->options().group == group) members.insert(other->options().member);
  }
  for (const auto& other : departing_) {
    if (other->options().group == group) members.insert(other->options().member);
  }
  int member = 0;
  while (members.count(member) > 0) ++member;
  absl::StatusOr<std::unique_ptr<broker::GroupConsumer>> consumer = factory_(group, member);
  if (!consumer.ok()) return consumer.status();
  SubscriptionOptions options = defaults_;
  options.group = group;
  options.topics = sorted;
  options.member = member;
  options.dispatch.policy = policy;
  auto subscription = std::make_shared<Subscription>(std::move(options), *std::move(consumer),
                                                     dead_letters_, clock_, metrics_);
  if (absl::Status started = subscription->Start(); !started.ok()) return started;
  subscriptions_.emplace(key, subscription);
  if (!subscription->Attach(stream_id, stream, max_in_flight)) {
    return absl::UnavailableError(
        absl::StrCat("the subscription of group '", PrintableName(group), "' closed as it started"));
  }
  return subscription;
}

void SubscriptionRegistry::BeginDrain() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  for (auto& [key, subscription] : subscriptions_) subscription->BeginDrain();
}

void SubscriptionRegistry::CloseAll(absl::Duration grace, const absl::Status& status) {
  std::map<std::string, std::shared_ptr<Subscription>> subscriptions;
  std::vector<std::shared_ptr<Subscription>> departing;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    subscriptions.swap(subscriptions_);
    departing.swap(departing_);
  }
  for (auto& [key, subscription] : subscriptions) subscription->BeginDrain();
  const absl::Time deadline = absl::Now() + grace;
  // Every subscription stops within the shared grace; then they leave their groups in
  // parallel, each on its own poll thread.
  for (auto& [key, subscription] : subscriptions) {
    subscription->Stop(std::max(deadline - absl::Now(), absl::ZeroDuration()), status,
                       broker::GroupConsumer::Departure::kRestart);
  }
  for (auto& [key, subscription] : subscriptions) subscription->Join();
  for (auto& subscription : departing) subscription->Join();
}

std::vector<std::shared_ptr<Subscription>> SubscriptionRegistry::TakeClosed() {
  std::vector<std::shared_ptr<Subscription>> closed;
  for (auto it = departing_.begin(); it != departing_.end();) {
    if ((*it)->closed()) {
      closed.push_back(std::move(*it));
      it = departing_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    if (it->second->closed()) {
      closed.push_back(std::move(it->second));
      it = subscriptions_.erase(it);
    } else {
      ++it;
    }
  }
  return closed;
}

bool SubscriptionRegistry::AwaitIdle(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::vector<std::shared_ptr<Subscription>> open;
    std::vector<std::shared_ptr<Subscription>> closed;
    {
      absl::MutexLock lock(&mu_);
      closed = TakeClosed();
      for (const auto& [key, subscription] : subscriptions_) open.push_back(subscription);
      open.insert(open.end(), departing_.begin(), departing_.end());
    }
    for (const auto& subscription : closed) subscription->Join();
    if (open.empty()) return true;
    for (const auto& subscription : open) {
      if (!subscription->AwaitClosed(deadline - absl::Now())) return false;
    }
  }
}

std::vector<SubscriptionStats> SubscriptionRegistry::Stats() {
  std::vector<std::shared_ptr<Subscription>> open;
  // Subscriptions that left their groups since the last look: their poll threads are joined
  // here (each scrape), so that a sidecar with no new streams also lets them go.
  std::vector<std::shared_ptr<Subscription>> closed;
  {
    absl::MutexLock lock(&mu_);
    closed = TakeClosed();
    for (const auto& [key, subscription] : subscriptions_) open.push_back(subscription);
  }
  for (const auto& subscription : closed) subscription->Join();
  std::vector<SubscriptionStats> stats;
  for (const auto& subscription : open) {
    if (!subscription->closed()) stats.push_back(subscription->Stats());
  }
  return stats;
}

size_t SubscriptionRegistry::open_subscriptions() {
  absl::MutexLock lock(&mu_);
  size_t open = 0;
  for (const auto& [key, subscription] : subscriptions_) open += subscription->closed() ? 0 : 1;
  return open;
}

}  // namespace kafka_sidecar::sidecar
