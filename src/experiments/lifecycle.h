// The A/B test lifecycle as a pure transition table:
//   start:    draft | paused -> active
//   pause:    active -> paused
//   resume:   paused -> active
//   complete: active | paused -> completed   (optionally with a forced winner)
//   cancel:   draft | active | paused -> cancelled
// completed and cancelled are final. Anything else is kFailedPrecondition (HTTP 409) with a
// message saying which states the action is allowed from.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fulcrum::experiments {

enum class ExperimentStatus { kDraft, kActive, kPaused, kCompleted, kCancelled };
enum class LifecycleAction { kStart, kPause, kResume, kComplete, kCancel };

const char* status_name(ExperimentStatus status);  // "draft", "active", ...
std::optional<ExperimentStatus> parse_status(std::string_view name);
const char* action_name(LifecycleAction action);  // "start", "pause", ...
std::optional<LifecycleAction> parse_action(std::string_view name);

// The state after `action`, or kFailedPrecondition.
Result<ExperimentStatus> transition(ExperimentStatus from, LifecycleAction action);

}  // namespace fulcrum::experiments
