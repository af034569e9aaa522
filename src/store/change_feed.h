// Change-feed maintenance (the transactional outbox of store/automation.h).
//
// prune_document_changes deletes up to `limit` change-feed rows that were fanned out and whose
// change happened before `before`, oldest first, and returns how many it deleted. Rows not
// yet fanned out are never deleted, whatever their age. Both backends implement it; it is a
// free function over the two of them rather than a Store virtual so that adding it did not
// rebuild every user of store.h (fold it into Store at the next change of that interface).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum {

Result<std::int64_t> prune_document_changes(Store& store, UnixSeconds before, std::size_t limit);

}  // namespace fulcrum
