#include "experiments/lifecycle.h"

#include <array>

namespace fulcrum::experiments {
namespace {

struct Rule {
  LifecycleAction action;
  std::array<bool, 5> allowed_from;  // indexed by ExperimentStatus
  ExperimentStatus to;
  const char* allowed_text;
};

// allowed_from is in status order: draft, active, paused, completed, cancelled.
constexpr Rule kRules[] = {
    {LifecycleAction::kStart,
     {true, false, true, false, false},
     ExperimentStatus::kActive,
     "draft or paused"},
    {LifecycleAction::kPause,
     {false, true, false, false, false},
     ExperimentStatus::kPaused,
     "active"},
    {LifecycleAction::kResume,
     {false, false, true, false, false},
     ExperimentStatus::kActive,
     "paused"},
    {LifecycleAction::kComplete,
     {false, true, true, false, false},
     ExperimentStatus::kCompleted,
     "active or paused"},
    {LifecycleAction::kCancel,
     {true, true, true, false, false},
     ExperimentStatus::kCancelled,
     "draft, active or paused"},
};

}  // namespace

const char* status_name(ExperimentStatus status) {
  switch (status) {
    case ExperimentStatus::kDraft:
      return "draft";
    case ExperimentStatus::kActive:
      return "active";
    case ExperimentStatus::kPaused:
      return "paused";
    case ExperimentStatus::kCompleted:
      return "completed";
    case ExperimentStatus::kCancelled:
      return "cancelled";
  }
  return "draft";
}

std::optional<ExperimentStatus> parse_status(std::string_view name) {
  for (auto s : {ExperimentStatus::kDraft, ExperimentStatus::kActive, ExperimentStatus::kPaused,
                 ExperimentStatus::kCompleted, ExperimentStatus::kCancelled}) {
    if (name == status_name(s)) return s;
  }
  return std::nullopt;
}

const char* action_name(LifecycleAction action) {
  switch (action) {
    case LifecycleAction::kStart:
      return "start";
    case LifecycleAction::kPause:
      return "pause";
    case LifecycleAction::kResume:
      return "resume";
    case LifecycleAction::kComplete:
      return "complete";
    case LifecycleAction::kCancel:
      return "cancel";
  }
  return "start";
}

std::optional<LifecycleAction> parse_action(std::string_view name) {
  for (const Rule& rule : kRules) {
    if (name == action_name(rule.action)) return rule.action;
  }
  return std::nullopt;
}

Result<ExperimentStatus> transition(ExperimentStatus from, LifecycleAction action) {
  for (const Rule& rule : kRules) {
    if (rule.action != action) continue;
    if (rule.allowed_from[static_cast<int>(from)]) return rule.to;
    return failed_precondition(std::string("cannot ") + action_name(action) + " a test that is " +
                               status_name(from) + "; " + action_name(action) +
                               " is allowed only from " + rule.allowed_text);
  }
  return internal_error("unknown lifecycle action");
}

}  // namespace fulcrum::experiments
