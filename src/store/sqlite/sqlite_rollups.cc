// SqliteStore's usage rollups (store/rollup.h): folded into the tables by write_events in
// the ingest transaction, read by day range or for one user, rebuilt and verified from the
// event segments.
#include <sqlite3.h>

#include <algorithm>
#include <unordered_map>

#include "store/sqlite/event_segment.h"
#include "store/sqlite/sqlite_statement.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {

using sqlite::EventKind;
using sqlite::SegmentReader;
using sqlite::Statement;

namespace {

// Days rebuilt per pass: one pass holds at most this many days of rows in memory, and the
// segments' min_at/max_at let each pass skip the segments of other days.
constexpr UsageDay kRebuildDays = 16;

constexpr char kUserDayColumns[] =
    "day, user_key, sessions, session_seconds, usage_events, uses, payments_succeeded, "
    "payments_failed, amount_succeeded_minor, amount_failed_minor, paywall_hits";
constexpr char kFeatureDayColumns[] =
    "day, user_key, feature_key, usage_events, uses, paywall_hits";

UserDayRollup read_user_day(const Statement& row) {
  UserDayRollup r;
  r.day = static_cast<UsageDay>(row.int64(0));
  r.user_key = static_cast<std::uint32_t>(row.int64(1));
  r.sessions = row.int64(2);
  r.session_seconds = row.int64(3);
  r.usage_events = row.int64(4);
  r.uses = row.int64(5);
  r.payments_succeeded = row.int64(6);
  r.payments_failed = row.int64(7);
  r.amount_succeeded_minor = row.int64(8);
  r.amount_failed_minor = row.int64(9);
  r.paywall_hits = row.int64(10);
  return r;
}

FeatureDayRollup read_feature_day(const Statement& row) {
  FeatureDayRollup r;
  r.day = static_cast<UsageDay>(row.int64(0));
  r.user_key = static_cast<std::uint32_t>(row.int64(1));
  r.feature_key = static_cast<std::uint32_t>(row.int64(2));
  r.usage_events = row.int64(3);
  r.uses = row.int64(4);
  r.paywall_hits = row.int64(5);
  return r;
}

// SQL reading rows of a day range, or the rows of a user-key range ([?3, ?4): one user or a
// slice of users) by one primary-key range probe per day (the tables are keyed day first).
// ?1 = from_day, ?2 = to_day.
std::string rollup_select(const char* table, const char* columns, const RollupQuery& query) {
  if (!query.user_key) {
    return std::string("SELECT ") + columns + " FROM " + table + " WHERE day >= ?1 AND day < ?2";
  }
  return std::string("WITH RECURSIVE days(d) AS (SELECT ?1 UNION ALL SELECT d + 1 FROM days ") +
         "WHERE d + 1 < ?2) SELECT " + columns + " FROM days JOIN " + table +
         " ON day = d AND user_key >= ?3 AND user_key < ?4";
}

void bind_keys(Statement& select, const RollupQuery& query) {
  select.bind(3, static_cast<std::int64_t>(query.first_key()))
      .bind(4, static_cast<std::int64_t>(query.end_key()));
}

// A user's range is clamped to the days that hold rollups, so the recursive day list
// stays short.
Result<std::pair<UsageDay, UsageDay>> stored_day_bounds(sqlite3* db) {
  std::pair<UsageDay, UsageDay> bounds{0, 0};
  // Two subqueries: SQLite answers a lone MIN or MAX from the primary key's first column in
  // one probe, but scans the whole table for MIN and MAX in one SELECT.
  Statement query(db,
                  "SELECT (SELECT MIN(day) FROM usage_user_days), "
                  "(SELECT MAX(day) FROM usage_user_days)");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    if (!row.is_null(0)) {
      bounds = {static_cast<UsageDay>(row.int64(0)), static_cast<UsageDay>(row.int64(1)) + 1};
    }
  }));
  return bounds;
}

template <typename Visit>
Status each_segment_of_kind(sqlite3* db, EventKind kind, UnixSeconds from, UnixSeconds to,
                            Visit visit) {
  Statement query(db,
                  "SELECT payload FROM event_segments WHERE kind = ?1 AND max_at >= ?2 AND "
                  "min_at < ?3");
  query.bind(1, static_cast<std::int64_t>(kind)).bind(2, from).bind(3, to);
  Status damaged = Status::ok();
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    if (!damaged.is_ok()) return;
    auto reader = SegmentReader::open(row.blob(0));
    if (!reader.is_ok()) {
      damaged = reader.status();
      return;
    }
    visit(*reader);
    damaged = reader->status();
  }));
  return damaged;
}

// The stored feature keys by name, and the largest key (new names get the next ones).
Status read_feature_keys(sqlite3* db, std::unordered_map<std::string, std::uint32_t>& keys,
                         std::uint32_t& max_key) {
  Statement query(db, "SELECT feature_key, name FROM feature_keys");
  return query.each_row([&](const Statement& row) {
    const auto key = static_cast<std::uint32_t>(row.int64(0));
    keys.emplace(row.text(1), key);
    max_key = std::max(max_key, key);
  });
}

struct Recomputed {
  std::vector<UserDayRollup> user_days;
  std::vector<FeatureDayRollup> feature_days;
};

}  // namespace

Result<std::unordered_map<std::string, std::uint32_t>> SqliteStore::feature_keys_for(
    const EventBatch& batch) {
  std::unordered_map<std::string, std::uint32_t> keys;
  std::uint32_t max_key = 0;
  FULCRUM_RETURN_IF_ERROR(read_feature_keys(writer_, keys, max_key));
  Statement insert(writer_, "INSERT INTO feature_keys(feature_key, name) VALUES(?1, ?2)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  auto add = [&](const std::string& name) -> Status {
    if (keys.count(name)) return Status::ok();
    const std::uint32_t key = ++max_key;
    keys.emplace(name, key);
    return insert.bind(1, static_cast<std::int64_t>(key)).bind(2, name).run();
  };
  for (const auto& e : batch.feature_usage) FULCRUM_RETURN_IF_ERROR(add(e.feature));
  for (const auto& e : batch.paywall_hits) FULCRUM_RETURN_IF_ERROR(add(e.feature));
  return keys;
}

Status SqliteStore::write_rollups(const EventBatch& batch, const BatchUserKeys& user_keys) {
  if (batch.feature_usage.empty() && batch.sessions.empty() && batch.payments.empty() &&
      batch.paywall_hits.empty() && batch.subscription_changes.empty()) {
    return Status::ok();
  }
  auto feature_keys = feature_keys_for(batch);
  if (!feature_keys.is_ok()) return feature_keys.status();
  RollupAccumulator rollups;
  // Runs of one feature are common; remember the last lookup.
  const std::string* last_name = nullptr;
  std::uint32_t last_key = 0;
  auto feature_key = [&](const std::string& name) {
    if (last_name == nullptr || *last_name != name) {
      last_name = &name;
      last_key = feature_keys->at(name);
    }
    return last_key;
  };
  for (std::size_t i = 0; i < batch.feature_usage.size(); ++i) {
    const auto& e = batch.feature_usage[i];
    rollups.add_usage(user_keys.usage[i], feature_key(e.feature), e.at, e.count);
  }
  for (std::size_t i = 0; i < batch.sessions.size(); ++i) {
    const auto& e = batch.sessions[i];
    rollups.add_session(user_keys.sessions[i], e.at, e.duration_seconds);
  }
  for (std::size_t i = 0; i < batch.payments.size(); ++i) {
    const auto& e = batch.payments[i];
    rollups.add_payment(user_keys.payments[i], e.at, e.succeeded, e.amount_minor);
  }
  for (std::size_t i = 0; i < batch.paywall_hits.size(); ++i) {
    const auto& e = batch.paywall_hits[i];
    rollups.add_paywall_hit(user_keys.paywall_hits[i], feature_key(e.feature), e.at);
  }
  FULCRUM_RETURN_IF_ERROR(upsert_rollups(rollups.user_days(), rollups.feature_days(), true));
  if (!batch.subscription_changes.empty()) {
    Statement insert(writer_,
                     "INSERT INTO usage_tier_changes(user_key, at, kind, from_tier, to_tier) "
                     "VALUES(?1, ?2, ?3, ?4, ?5)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (std::size_t i = 0; i < batch.subscription_changes.size(); ++i) {
      const auto& e = batch.subscription_changes[i];
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, static_cast<std::int64_t>(user_keys.changes[i]))
                                  .bind(2, e.at)
                                  .bind(3, static_cast<std::int64_t>(e.kind))
                                  .bind(4, static_cast<std::int64_t>(e.from_tier))
                                  .bind(5, static_cast<std::int64_t>(e.to_tier))
                                  .run());
    }
  }
  return Status::ok();
}

Status SqliteStore::upsert_rollups(const std::vector<UserDayRollup>& user_days,
                                   const std::vector<FeatureDayRollup>& feature_days, bool add) {
  const char* user_conflict =
      add ? " ON CONFLICT(day, user_key) DO UPDATE SET sessions = sessions + excluded.sessions, "
            "session_seconds = session_seconds + excluded.session_seconds, "
            "usage_events = usage_events + excluded.usage_events, uses = uses + excluded.uses, "
            "payments_succeeded = payments_succeeded + excluded.payments_succeeded, "
            "payments_failed = payments_failed + excluded.payments_failed, "
            "amount_succeeded_minor = amount_succeeded_minor + excluded.amount_succeeded_minor, "
            "amount_failed_minor = amount_failed_minor + excluded.amount_failed_minor, "
            "paywall_hits = paywall_hits + excluded.paywall_hits"
          : "";
  Statement user_insert(writer_, (std::string("INSERT INTO usage_user_days(") + kUserDayColumns +
                                  ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)" + user_conflict)
                                     .c_str());
  FULCRUM_RETURN_IF_ERROR(user_insert.status());
  for (const auto& r : user_days) {
    FULCRUM_RETURN_IF_ERROR(user_insert.bind(1, static_cast<std::int64_t>(r.day))
                                .bind(2, static_cast<std::int64_t>(r.user_key))
                                .bind(3, r.sessions)
                                .bind(4, r.session_seconds)
                                .bind(5, r.usage_events)
                                .bind(6, r.uses)
                                .bind(7, r.payments_succeeded)
                                .bind(8, r.payments_failed)
                                .bind(9, r.amount_succeeded_minor)
                                .bind(10, r.amount_failed_minor)
                                .bind(11, r.paywall_hits)
                                .run());
  }
  const char* feature_conflict =
      add ? " ON CONFLICT(day, user_key, feature_key) DO UPDATE SET "
            "usage_events = usage_events + excluded.usage_events, uses = uses + excluded.uses, "
            "paywall_hits = paywall_hits + excluded.paywall_hits"
          : "";
  Statement feature_insert(writer_,
                           (std::string("INSERT INTO usage_feature_days(") + kFeatureDayColumns +
                            ") VALUES(?1,?2,?3,?4,?5,?6)" + feature_conflict)
                               .c_str());
  FULCRUM_RETURN_IF_ERROR(feature_insert.status());
  for (const auto& r : feature_days) {
    FULCRUM_RETURN_IF_ERROR(feature_insert.bind(1, static_cast<std::int64_t>(r.day))
                                .bind(2, static_cast<std::int64_t>(r.user_key))
                                .bind(3, static_cast<std::int64_t>(r.feature_key))
                                .bind(4, r.usage_events)
                                .bind(5, r.uses)
                                .bind(6, r.paywall_hits)
                                .run());
  }
  return Status::ok();
}

// Recomputes the rollups of days [from_day, to_day) from the event segments, decoding user
// keys directly (no names). Feature keys come from the feature_keys table, extended with
// features it lacks (only inside a write transaction: `register_features`).
static Status recompute_days(sqlite3* db, UsageDay from_day, UsageDay to_day,
                             std::unordered_map<std::string, std::uint32_t>& feature_keys,
                             const std::function<Result<std::uint32_t>(std::string_view)>& add,
                             Recomputed& out) {
  RollupAccumulator rollups;
  const UnixSeconds from = usage_day_start(from_day), to = usage_day_start(to_day);
  Status failed = Status::ok();
  auto key_of = [&](std::string_view name) -> std::uint32_t {
    auto it = feature_keys.find(std::string(name));
    if (it != feature_keys.end()) return it->second;
    auto added = add(name);
    if (!added.is_ok()) {
      failed = added.status();
      return 0;
    }
    feature_keys.emplace(std::string(name), *added);
    return *added;
  };
  FULCRUM_RETURN_IF_ERROR(
      each_segment_of_kind(db, EventKind::kFeatureUsage, from, to, [&](SegmentReader& s) {
        for (std::uint32_t i = 0; i < s.count(); ++i) {
          const auto user = s.user();
          const std::string_view feature = s.text();
          const UnixSeconds at = s.integer();
          const std::int64_t count = s.integer();
          if (at >= from && at < to) rollups.add_usage(user, key_of(feature), at, count);
        }
      }));
  FULCRUM_RETURN_IF_ERROR(
      each_segment_of_kind(db, EventKind::kSession, from, to, [&](SegmentReader& s) {
        for (std::uint32_t i = 0; i < s.count(); ++i) {
          const auto user = s.user();
          const UnixSeconds at = s.integer();
          const std::int64_t duration = s.integer();
          if (at >= from && at < to) rollups.add_session(user, at, duration);
        }
      }));
  FULCRUM_RETURN_IF_ERROR(
      each_segment_of_kind(db, EventKind::kPayment, from, to, [&](SegmentReader& s) {
        for (std::uint32_t i = 0; i < s.count(); ++i) {
          const auto user = s.user();
          const UnixSeconds at = s.integer();
          const bool succeeded = s.integer() != 0;
          const std::int64_t amount = s.integer();
          if (at >= from && at < to) rollups.add_payment(user, at, succeeded, amount);
        }
      }));
  FULCRUM_RETURN_IF_ERROR(
      each_segment_of_kind(db, EventKind::kPaywallHit, from, to, [&](SegmentReader& s) {
        for (std::uint32_t i = 0; i < s.count(); ++i) {
          const auto user = s.user();
          const std::string_view feature = s.text();
          const UnixSeconds at = s.integer();
          if (at >= from && at < to) rollups.add_paywall_hit(user, key_of(feature), at);
        }
      }));
  FULCRUM_RETURN_IF_ERROR(failed);
  out.user_days = rollups.user_days();
  out.feature_days = rollups.feature_days();
  return Status::ok();
}

static Result<std::vector<TierChangeRollup>> recompute_tier_changes(sqlite3* db) {
  std::vector<TierChangeRollup> changes;
  FULCRUM_RETURN_IF_ERROR(each_segment_of_kind(
      db, EventKind::kSubscriptionChange, INT64_MIN, INT64_MAX, [&](SegmentReader& s) {
        for (std::uint32_t i = 0; i < s.count(); ++i) {
          TierChangeRollup change;
          change.user_key = s.user();
          change.at = s.integer();
          change.kind = static_cast<SubscriptionChangeKind>(s.integer());
          change.from_tier = static_cast<Tier>(s.integer());
          change.to_tier = static_cast<Tier>(s.integer());
          changes.push_back(change);
        }
      }));
  return changes;
}

// Days that hold events of the rollup kinds: [first, last + 1), or empty.
static Result<std::pair<UsageDay, UsageDay>> event_day_bounds(sqlite3* db) {
  std::pair<UsageDay, UsageDay> bounds{0, 0};
  Statement query(db,
                  "SELECT MIN(min_at), MAX(max_at) FROM event_segments WHERE kind IN "
                  "(?1, ?2, ?3, ?4)");
  query.bind(1, static_cast<std::int64_t>(EventKind::kFeatureUsage))
      .bind(2, static_cast<std::int64_t>(EventKind::kSession))
      .bind(3, static_cast<std::int64_t>(EventKind::kPayment))
      .bind(4, static_cast<std::int64_t>(EventKind::kPaywallHit));
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    if (!row.is_null(0)) {
      bounds = {usage_day_of(row.int64(0)), usage_day_of(row.int64(1)) + 1};
    }
  }));
  return bounds;
}

Status SqliteStore::write_rebuilt_rollups() {
  FULCRUM_RETURN_IF_ERROR(sqlite::exec(writer_,
                                       "DELETE FROM usage_user_days; DELETE FROM "
                                       "usage_feature_days; DELETE FROM usage_tier_changes"));
  std::unordered_map<std::string, std::uint32_t> feature_keys;
  std::uint32_t max_feature_key = 0;
  FULCRUM_RETURN_IF_ERROR(read_feature_keys(writer_, feature_keys, max_feature_key));
  Statement insert_feature(writer_, "INSERT INTO feature_keys(feature_key, name) VALUES(?1, ?2)");
  FULCRUM_RETURN_IF_ERROR(insert_feature.status());
  auto add_feature = [&](std::string_view name) -> Result<std::uint32_t> {
    const std::uint32_t key = ++max_feature_key;
    FULCRUM_RETURN_IF_ERROR(
        insert_feature.bind(1, static_cast<std::int64_t>(key)).bind(2, name).run());
    return key;
  };
  auto bounds = event_day_bounds(writer_);
  if (!bounds.is_ok()) return bounds.status();
  for (UsageDay day = bounds->first; day < bounds->second; day += kRebuildDays) {
    Recomputed rows;
    FULCRUM_RETURN_IF_ERROR(recompute_days(writer_, day,
                                           std::min(day + kRebuildDays, bounds->second),
                                           feature_keys, add_feature, rows));
    FULCRUM_RETURN_IF_ERROR(upsert_rollups(rows.user_days, rows.feature_days, false));
  }
  auto changes = recompute_tier_changes(writer_);
  if (!changes.is_ok()) return changes.status();
  Statement insert(writer_,
                   "INSERT INTO usage_tier_changes(user_key, at, kind, from_tier, to_tier) "
                   "VALUES(?1, ?2, ?3, ?4, ?5)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (const auto& c : *changes) {
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, static_cast<std::int64_t>(c.user_key))
                                .bind(2, c.at)
                                .bind(3, static_cast<std::int64_t>(c.kind))
                                .bind(4, static_cast<std::int64_t>(c.from_tier))
                                .bind(5, static_cast<std::int64_t>(c.to_tier))
                                .run());
  }
  return Status::ok();
}

Status SqliteStore::rebuild_rollups() {
  std::lock_guard lock(write_mutex_);
  sqlite::Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  FULCRUM_RETURN_IF_ERROR(write_rebuilt_rollups());
  return transaction.commit();
}

Result<RollupVerification> SqliteStore::verify_rollups() {
  FULCRUM_WITH_READER(reader);
  sqlite3* db = reader.db();
  // One read transaction: events and rollups from the same snapshot.
  FULCRUM_RETURN_IF_ERROR(sqlite::exec(db, "BEGIN"));
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite::exec(db, "COMMIT"); }
  } end_read{db};
  std::unordered_map<std::string, std::uint32_t> feature_keys;
  {
    Statement query(db, "SELECT feature_key, name FROM feature_keys");
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      feature_keys.emplace(row.text(1), static_cast<std::uint32_t>(row.int64(0)));
    }));
  }
  RollupVerification report;
  // A feature of the events without a key cannot have correct rollups.
  auto unknown_feature = [&](std::string_view name) -> Result<std::uint32_t> {
    ++report.mismatches;
    if (report.examples.size() < 10) {
      report.examples.push_back("feature_keys: no key for feature " + std::string(name));
    }
    return std::uint32_t{0};
  };
  auto events = event_day_bounds(db);
  if (!events.is_ok()) return events.status();
  auto stored = stored_day_bounds(db);
  if (!stored.is_ok()) return stored.status();
  UsageDay first = events->first, last = events->second;
  if (stored->first != stored->second) {
    first = events->first == events->second ? stored->first : std::min(first, stored->first);
    last = std::max(last, stored->second);
  }
  for (UsageDay day = first; day < last; day += kRebuildDays) {
    const UsageDay end = std::min(day + kRebuildDays, last);
    Recomputed rows;
    FULCRUM_RETURN_IF_ERROR(recompute_days(db, day, end, feature_keys, unknown_feature, rows));
    std::vector<UserDayRollup> stored_users;
    std::vector<FeatureDayRollup> stored_features;
    RollupQuery query{day, end, std::nullopt};
    {
      Statement select(
          db, (rollup_select("usage_user_days", kUserDayColumns, query) + " ORDER BY day, user_key")
                  .c_str());
      select.bind(1, static_cast<std::int64_t>(day)).bind(2, static_cast<std::int64_t>(end));
      FULCRUM_RETURN_IF_ERROR(select.each_row(
          [&](const Statement& row) { stored_users.push_back(read_user_day(row)); }));
    }
    {
      Statement select(db, (rollup_select("usage_feature_days", kFeatureDayColumns, query) +
                            " ORDER BY day, user_key, feature_key")
                               .c_str());
      select.bind(1, static_cast<std::int64_t>(day)).bind(2, static_cast<std::int64_t>(end));
      FULCRUM_RETURN_IF_ERROR(select.each_row(
          [&](const Statement& row) { stored_features.push_back(read_feature_day(row)); }));
    }
    report.user_days += static_cast<std::int64_t>(rows.user_days.size());
    report.feature_days += static_cast<std::int64_t>(rows.feature_days.size());
    compare_user_days(stored_users, rows.user_days, report);
    compare_feature_days(stored_features, rows.feature_days, report);
  }
  auto changes = recompute_tier_changes(db);
  if (!changes.is_ok()) return changes.status();
  report.tier_changes = static_cast<std::int64_t>(changes->size());
  std::vector<TierChangeRollup> stored_changes;
  FULCRUM_RETURN_IF_ERROR(scan_tier_changes_on(
      db, std::nullopt, [&](const TierChangeRollup& c) { stored_changes.push_back(c); }));
  compare_tier_changes(std::move(stored_changes), std::move(*changes), report);
  return report;
}

Status SqliteStore::scan_user_keys(
    const std::function<void(std::uint32_t, const std::string&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(), "SELECT user_key, user_id FROM user_keys");
  return query.each_row(
      [&](const Statement& row) { visit(static_cast<std::uint32_t>(row.int64(0)), row.text(1)); });
}

Result<std::optional<std::uint32_t>> SqliteStore::find_user_key(const std::string& user_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(), "SELECT user_key FROM user_keys WHERE user_id = ?1");
  query.bind(1, user_id);
  std::optional<std::uint32_t> key;
  FULCRUM_RETURN_IF_ERROR(query.each_row(
      [&](const Statement& row) { key = static_cast<std::uint32_t>(row.int64(0)); }));
  return key;
}

Status SqliteStore::scan_feature_keys(
    const std::function<void(std::uint32_t, const std::string&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(), "SELECT feature_key, name FROM feature_keys");
  return query.each_row(
      [&](const Statement& row) { visit(static_cast<std::uint32_t>(row.int64(0)), row.text(1)); });
}

Status SqliteStore::scan_user_days(const RollupQuery& query,
                                   const std::function<void(const UserDayRollup&)>& visit) {
  FULCRUM_WITH_READER(reader);
  RollupQuery bounded = query;
  if (query.user_key) {
    auto bounds = stored_day_bounds(reader.db());
    if (!bounds.is_ok()) return bounds.status();
    bounded.from_day = std::max(query.from_day, bounds->first);
    bounded.to_day = std::min(query.to_day, bounds->second);
    if (bounded.from_day >= bounded.to_day) return Status::ok();
  }
  Statement select(reader.db(), rollup_select("usage_user_days", kUserDayColumns, bounded).c_str());
  select.bind(1, static_cast<std::int64_t>(bounded.from_day))
      .bind(2, static_cast<std::int64_t>(bounded.to_day));
  if (query.user_key) bind_keys(select, query);
  return select.each_row([&](const Statement& row) { visit(read_user_day(row)); });
}

Status SqliteStore::scan_feature_days(const RollupQuery& query,
                                      const std::function<void(const FeatureDayRollup&)>& visit) {
  FULCRUM_WITH_READER(reader);
  RollupQuery bounded = query;
  if (query.user_key) {
    auto bounds = stored_day_bounds(reader.db());
    if (!bounds.is_ok()) return bounds.status();
    bounded.from_day = std::max(query.from_day, bounds->first);
    bounded.to_day = std::min(query.to_day, bounds->second);
    if (bounded.from_day >= bounded.to_day) return Status::ok();
  }
  Statement select(reader.db(),
                   rollup_select("usage_feature_days", kFeatureDayColumns, bounded).c_str());
  select.bind(1, static_cast<std::int64_t>(bounded.from_day))
      .bind(2, static_cast<std::int64_t>(bounded.to_day));
  if (query.user_key) bind_keys(select, query);
  return select.each_row([&](const Statement& row) { visit(read_feature_day(row)); });
}

Status SqliteStore::scan_tier_changes_on(
    sqlite3* db, std::optional<std::uint32_t> user_key,
    const std::function<void(const TierChangeRollup&)>& visit) {
  std::string sql = "SELECT user_key, at, kind, from_tier, to_tier FROM usage_tier_changes";
  if (user_key) sql += " WHERE user_key = ?1";
  Statement query(db, sql.c_str());
  if (user_key) query.bind(1, static_cast<std::int64_t>(*user_key));
  return query.each_row([&](const Statement& row) {
    visit(TierChangeRollup{static_cast<std::uint32_t>(row.int64(0)), row.int64(1),
                           static_cast<SubscriptionChangeKind>(row.int64(2)),
                           static_cast<Tier>(row.int64(3)), static_cast<Tier>(row.int64(4))});
  });
}

Status SqliteStore::scan_tier_changes(std::optional<std::uint32_t> user_key,
                                      const std::function<void(const TierChangeRollup&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_tier_changes_on(reader.db(), user_key, visit);
}

}  // namespace fulcrum
