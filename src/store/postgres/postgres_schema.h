// Schema migrations for the PostgreSQL backend: an ordered list of SQL scripts (the same
// tables and indexes as the SQLite backend, in PostgreSQL types); the schema_version table
// records how many have been applied. Migrations run under an advisory lock so replicas
// starting together apply each script once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/rollup.h"

namespace fulcrum::postgres {

const std::vector<std::string_view>& migrations();

// The usage rollups' aggregation in SQL (store/rollup.h defines it; RollupAccumulator is the
// C++ twin). `events_prefix` names the event tables read: "" for the stored events (the
// migration, rebuilds and verification), "fulcrum_stage_" for one ingest batch's staging
// tables. The merge gives new users and features keys, then adds the batch's per user-day
// sums to the rollup rows with INSERT ... ON CONFLICT DO UPDATE.
std::string rollup_merge_sql(std::string_view events_prefix);
// SELECTs of the recomputed rows, in the rollup tables' column order.
std::string user_day_rollup_select(std::string_view events_prefix);
std::string feature_day_rollup_select(std::string_view events_prefix);
std::string tier_change_rollup_select(std::string_view events_prefix);
// The rows of a rollup table in the query's days and, when it names a user key, its user
// keys (one user or a slice of users), with the values inline (COPY takes no parameters).
// - Every user: in primary-key order (`key_columns`), an index-only scan of the key (it
//   INCLUDEs every column). Engines keep per-user state in arrays indexed by user key, and
//   rows in heap order (ingestion's, by event time) made each row a cache miss there.
// - A key range: one primary-key range probe per day (the tables are keyed day first) over
//   the days that hold rollups at all, each an index-only scan, so rows come day by day in
//   key order without a sort. OFFSET 0 keeps the LATERAL subquery from being flattened into
//   a join: for a slice of 32k of 250k users the planner otherwise hashed the whole table
//   (to temp files) once per slice.
std::string rollup_range_select(std::string_view table, std::string_view columns,
                                std::string_view key_columns, const RollupQuery& query);

}  // namespace fulcrum::postgres
