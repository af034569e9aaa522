#include "store/model.h"

namespace fulcrum {

const char* tier_name(Tier tier) {
  switch (tier) {
    case Tier::kFree: return "free";
    case Tier::kPlus: return "plus";
    case Tier::kPremium: return "premium";
  }
  return "free";
}

std::optional<Tier> parse_tier(std::string_view name) {
  if (name == "free") return Tier::kFree;
  if (name == "plus") return Tier::kPlus;
  if (name == "premium") return Tier::kPremium;
  return std::nullopt;
}

const char* subscription_change_name(SubscriptionChangeKind kind) {
  switch (kind) {
    case SubscriptionChangeKind::kUpgrade: return "upgrade";
    case SubscriptionChangeKind::kDowngrade: return "downgrade";
    case SubscriptionChangeKind::kCancel: return "cancel";
  }
  return "upgrade";
}

std::optional<SubscriptionChangeKind> parse_subscription_change(std::string_view name) {
  if (name == "upgrade") return SubscriptionChangeKind::kUpgrade;
  if (name == "downgrade") return SubscriptionChangeKind::kDowngrade;
  if (name == "cancel") return SubscriptionChangeKind::kCancel;
  return std::nullopt;
}

}  // namespace fulcrum
