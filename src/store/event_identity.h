// Internal to the store backends: event identity (IngestReport::duplicates). A record with
// an event_id is stored at most once per kind; both backends keep the ids in a table
// `event_ids(kind, event_id)` and claim them in the ingest transaction. This file holds
// what they share: the kinds, the order the ids of a batch are listed in, and the batch
// without the records whose id was not newly claimed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/model.h"

namespace fulcrum::identity {

// Stored in event_ids.kind: never renumber.
enum class Kind : std::int16_t {
  kUser = 1,
  kFeature = 2,
  kFeatureUsage = 3,
  kSession = 4,
  kSubscriptionChange = 5,
  kPayment = 6,
  kPaywallHit = 7,
  kExposure = 8,
  kMetric = 9,
  // Exposures the server records for its own assignments (Store::append_exposures_and_audit),
  // identified by (experiment, user, variant); apart from client ids of kind kExposure.
  kAssignment = 10,
};

struct EventId {
  Kind kind;
  std::string_view id;  // points into the batch
};

// The ids of the batch's records that have one, kind by kind in the batch's member order.
std::vector<EventId> ids_of(const EventBatch& batch);

// The identity of a server-made assignment exposure: its experiment, user and variant.
std::string assignment_id(const ExposureEvent& exposure);

// Given `is_new[i]` for ids_of(batch)[i] (false: stored before or earlier in the batch),
// returns the batch without the records whose id is not new, or nullopt when every one is
// new (then the batch itself is what to store). `duplicates` is set to how many were left out.
std::optional<EventBatch> without_duplicates(const EventBatch& batch,
                                             const std::vector<bool>& is_new,
                                             std::int64_t& duplicates);

// Marks ids repeated within `ids` (after their first occurrence) as not new, and returns the
// indexes of the first occurrences: the ones a backend has to claim.
std::vector<std::size_t> first_occurrences(const std::vector<EventId>& ids,
                                           std::vector<bool>& is_new);

}  // namespace fulcrum::identity
