// SqliteStore's events: ingestion into segments, scans, and the experiment aggregates
// (first exposure per user joined with metric events), all over event_segments.
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include "store/sqlite/event_segment.h"
#include "store/sqlite/sqlite_statement.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {

using sqlite::EventCodec;
using sqlite::EventKind;
using sqlite::SegmentReader;
using sqlite::SegmentWriter;
using sqlite::Statement;
using sqlite::UserKey;

struct SqliteFirstExposures {
  std::vector<std::string> variants;         // distinct variant names, sorted
  std::vector<std::uint32_t> slot_of_key;    // user key -> exposed slot + 1 (0: not exposed)
  std::vector<std::uint16_t> variant_index;  // per slot
  std::vector<UnixSeconds> first_at;         // per slot
  std::int64_t multi_variant_users = 0;      // users exposed to more than one variant
};

namespace {

// A full segment; large batches are cut into segments of this many events.
constexpr std::uint32_t kSegmentEvents = 4096;
// A batch's events of one kind and key are appended to the newest segment when that one
// holds fewer than this many, so one-event writes (an assignment's exposure) do not leave
// a segment per event behind, while a top-up never rewrites more than ~this many events.
constexpr std::uint32_t kTopUpBelow = 1024;

// One read snapshot across several statements (user keys, then segments), so a segment
// never names a user key the snapshot cannot see.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(sqlite3* db) : db_(db) { status_ = sqlite::exec(db, "BEGIN"); }
  ~ReadSnapshot() {
    if (status_.is_ok()) sqlite::exec(db_, "COMMIT");
  }
  const Status& status() const { return status_; }

 private:
  sqlite3* db_;
  Status status_;
};

// One integer from a query of one row and column; `fallback` when it is NULL or empty.
Result<std::int64_t> single_integer(sqlite3* db, const char* sql, std::int64_t fallback) {
  std::int64_t value = fallback;
  Statement query(db, sql);
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    if (!row.is_null(0)) value = row.int64(0);
  }));
  return value;
}

// The largest user key handed out (0 when none): keys are dense, so also how many.
Result<std::int64_t> max_stored_user_key(sqlite3* db) {
  return single_integer(db, "SELECT MAX(user_key) FROM user_keys", 0);
}

// Runs `query` (its segment payload in column `payload_column`) and calls
// visit(row, reader) for each segment; a damaged segment stops the scan with its error.
template <typename Visit>
Status each_segment_row(Statement& query, int payload_column, Visit visit) {
  Status damaged = Status::ok();
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    if (!damaged.is_ok()) return;
    auto reader = SegmentReader::open(row.blob(payload_column));
    if (!reader.is_ok()) {
      damaged = reader.status();
      return;
    }
    visit(row, *reader);
    damaged = reader->status();
  }));
  return damaged;
}

}  // namespace

Status SqliteStore::load_user_keys() {
  auto stored_max = max_stored_user_key(writer_);
  if (!stored_max.is_ok()) return stored_max.status();
  if (*stored_max == max_user_key_) return Status::ok();
  // Another process (or the first call here) added keys: learn them.
  Statement query(writer_, "SELECT user_key, user_id FROM user_keys WHERE user_key > ?1");
  query.bind(1, static_cast<std::int64_t>(max_user_key_));
  return query.each_row([&](const Statement& row) {
    const auto key = static_cast<UserKey>(row.int64(0));
    user_key_of_.insert_or_assign(row.text(1), key);
    max_user_key_ = std::max(max_user_key_, key);
  });
}

template <typename Event>
Status SqliteStore::register_user_keys(const std::vector<Event>& events,
                                       std::vector<std::uint32_t>& keys) {
  std::optional<Statement> insert;
  keys.clear();
  keys.reserve(events.size());
  for (const Event& event : events) {
    auto known = user_key_of_.find(event.user_id);
    if (known != user_key_of_.end()) {
      keys.push_back(known->second);
      continue;
    }
    if (!insert) {
      insert.emplace(writer_, "INSERT INTO user_keys(user_key, user_id) VALUES(?1, ?2)");
      FULCRUM_RETURN_IF_ERROR(insert->status());
    }
    const UserKey key = max_user_key_ + 1;
    FULCRUM_RETURN_IF_ERROR(
        insert->bind(1, static_cast<std::int64_t>(key)).bind(2, event.user_id).run());
    max_user_key_ = key;
    user_key_of_.emplace(event.user_id, key);
    user_keys_added_.push_back(event.user_id);
    keys.push_back(key);
  }
  return Status::ok();
}

void SqliteStore::settle_user_keys(bool committed) {
  if (!committed) {
    for (const auto& user_id : user_keys_added_) user_key_of_.erase(user_id);
    max_user_key_ -= static_cast<UserKey>(user_keys_added_.size());
  }
  user_keys_added_.clear();
}

template <typename Event>
Status SqliteStore::write_segments(const std::vector<Event>& events,
                                   std::vector<std::uint32_t>* user_keys_out) {
  using Codec = EventCodec<Event>;
  if (events.empty()) return Status::ok();
  std::vector<UserKey> local_keys;
  std::vector<UserKey>& user_keys = user_keys_out ? *user_keys_out : local_keys;  // per event
  FULCRUM_RETURN_IF_ERROR(register_user_keys(events, user_keys));
  const auto kind = static_cast<std::int64_t>(Codec::kKind);
  // Group by segment key (experiment, metric), keeping each group's order.
  std::map<std::string_view, std::vector<std::uint32_t>> groups;  // key -> event indexes
  for (std::uint32_t i = 0; i < events.size(); ++i) groups[Codec::key(events[i])].push_back(i);

  Statement newest(writer_,
                   "SELECT segment_id, event_count, min_at, max_at, payload FROM event_segments "
                   "WHERE kind = ?1 AND key = ?2 ORDER BY segment_id DESC LIMIT 1");
  Statement insert(writer_,
                   "INSERT INTO event_segments(kind, key, event_count, min_at, max_at, payload) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  Statement remove(writer_, "DELETE FROM event_segments WHERE segment_id = ?1");
  FULCRUM_RETURN_IF_ERROR(newest.status());
  FULCRUM_RETURN_IF_ERROR(insert.status());
  FULCRUM_RETURN_IF_ERROR(remove.status());

  for (const auto& [group_key, group] : groups) {
    // A plain reference: clang 14 (the fuzz build) cannot capture structured bindings.
    const auto& key = group_key;
    SegmentWriter segment;
    UnixSeconds min_at = INT64_MAX, max_at = INT64_MIN;
    std::optional<std::int64_t> replaced;  // the small segment being topped up
    if (group.size() < kTopUpBelow) {
      Status resumed = Status::ok();
      newest.bind(1, kind).bind(2, key);
      FULCRUM_RETURN_IF_ERROR(newest.each_row([&](const Statement& row) {
        if (row.int64(1) >= kTopUpBelow) return;
        auto writer = SegmentWriter::resume(row.blob(4));
        if (!writer.is_ok()) {
          resumed = writer.status();
          return;
        }
        segment = std::move(*writer);
        min_at = row.int64(2);
        max_at = row.int64(3);
        replaced = row.int64(0);
      }));
      FULCRUM_RETURN_IF_ERROR(resumed);
    }
    // Inserts the new segment before deleting the one it replaces, so segment ids only
    // grow: the largest id per key then tells whether anything changed (see the cache).
    auto flush = [&]() -> Status {
      const std::string payload = segment.finish();
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, kind)
                                  .bind(2, key)
                                  .bind(3, static_cast<std::int64_t>(segment.count()))
                                  .bind(4, min_at)
                                  .bind(5, max_at)
                                  .bind_blob(6, payload)
                                  .run());
      if (replaced) FULCRUM_RETURN_IF_ERROR(remove.bind(1, *replaced).run());
      replaced.reset();
      segment = SegmentWriter();
      min_at = INT64_MAX;
      max_at = INT64_MIN;
      return Status::ok();
    };
    for (std::uint32_t index : group) {
      const Event& event = events[index];
      Codec::write(segment, user_keys[index], event);
      segment.end_event();
      min_at = std::min(min_at, event.at);
      max_at = std::max(max_at, event.at);
      if (segment.count() >= kSegmentEvents) FULCRUM_RETURN_IF_ERROR(flush());
    }
    if (segment.count() > 0) FULCRUM_RETURN_IF_ERROR(flush());
  }
  return Status::ok();
}

Status SqliteStore::write_events(const EventBatch& batch) {
  FULCRUM_RETURN_IF_ERROR(load_user_keys());
  BatchUserKeys keys;
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.feature_usage, &keys.usage));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.sessions, &keys.sessions));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.subscription_changes, &keys.changes));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.payments, &keys.payments));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.paywall_hits, &keys.paywall_hits));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.exposures));
  FULCRUM_RETURN_IF_ERROR(write_segments(batch.metric_events));
  // Same transaction as the segments: the rollups commit or roll back with the events.
  return write_rollups(batch, keys);
}

Result<std::shared_ptr<const sqlite::UserNames>> SqliteStore::user_names(sqlite3* db) {
  auto stored_max = max_stored_user_key(db);
  if (!stored_max.is_ok()) return stored_max.status();
  std::shared_ptr<const sqlite::UserNames> known;
  {
    std::lock_guard lock(names_mutex_);
    known = user_names_;
  }
  // Keys are dense and never reused, so the table's size says which are loaded.
  if (known && static_cast<std::int64_t>(known->size()) > *stored_max) return known;
  // A copy shares the loaded chunks; only the new names are read and stored.
  auto grown = known ? std::make_shared<sqlite::UserNames>(*known)
                     : std::make_shared<sqlite::UserNames>(sqlite::UserNames{""});  // key 0 unused
  Statement query(db, "SELECT user_key, user_id FROM user_keys WHERE user_key >= ?1");
  query.bind(1, static_cast<std::int64_t>(grown->size()));
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    grown->set(static_cast<std::size_t>(row.int64(0)), row.text(1));
  }));
  std::lock_guard lock(names_mutex_);
  if (!user_names_ || user_names_->size() < grown->size()) user_names_ = grown;
  return std::shared_ptr<const sqlite::UserNames>(grown);
}

template <typename Event>
Status SqliteStore::scan_segments(sqlite3* db, const std::string* key, TimeRange range,
                                  const std::function<void(const Event&)>& visit) {
  using Codec = EventCodec<Event>;
  if (range.from == 0) range.from = INT64_MIN;  // the default range has no lower bound
  ReadSnapshot snapshot(db);
  FULCRUM_RETURN_IF_ERROR(snapshot.status());
  auto names = user_names(db);
  if (!names.is_ok()) return names.status();
  std::string sql =
      "SELECT key, payload FROM event_segments WHERE kind = ?1 AND max_at >= ?2 AND min_at < ?3";
  if (key) sql += " AND key = ?4";
  Statement query(db, sql.c_str());
  query.bind(1, static_cast<std::int64_t>(Codec::kKind)).bind(2, range.from).bind(3, range.to);
  if (key) query.bind(4, *key);
  return each_segment_row(query, 1, [&](const Statement& row, SegmentReader& segment) {
    const std::string segment_key = row.text(0);
    for (std::uint32_t i = 0; i < segment.count(); ++i) {
      const Event event = Codec::read(segment, segment_key, **names);
      if (!segment.status().is_ok()) break;
      if (event.at >= range.from && event.at < range.to) visit(event);
    }
  });
}

#define FULCRUM_SCAN_SEGMENTS(Event, key, range, visit) \
  FULCRUM_WITH_READER(reader);                          \
  return scan_segments<Event>(reader.db(), key, range, visit)

Status SqliteStore::scan_feature_usage(TimeRange range,
                                       const std::function<void(const FeatureUsageEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(FeatureUsageEvent, nullptr, range, visit);
}

Status SqliteStore::scan_sessions(TimeRange range,
                                  const std::function<void(const SessionEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(SessionEvent, nullptr, range, visit);
}

Status SqliteStore::scan_subscription_changes(
    TimeRange range, const std::function<void(const SubscriptionChangeEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(SubscriptionChangeEvent, nullptr, range, visit);
}

Status SqliteStore::scan_payments(TimeRange range,
                                  const std::function<void(const PaymentEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(PaymentEvent, nullptr, range, visit);
}

Status SqliteStore::scan_paywall_hits(TimeRange range,
                                      const std::function<void(const PaywallHitEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(PaywallHitEvent, nullptr, range, visit);
}

Status SqliteStore::scan_metric_events(TimeRange range,
                                       const std::function<void(const MetricEvent&)>& visit) {
  FULCRUM_SCAN_SEGMENTS(MetricEvent, nullptr, range, visit);
}

Status SqliteStore::scan_exposures(const std::string& experiment_id,
                                   const std::function<void(const ExposureEvent&)>& visit) {
  constexpr TimeRange kAllTime{INT64_MIN, INT64_MAX};
  FULCRUM_SCAN_SEGMENTS(ExposureEvent, &experiment_id, kAllTime, visit);
}

Result<UnixSeconds> SqliteStore::latest_event_time() {
  FULCRUM_WITH_READER(reader);
  auto latest = single_integer(reader.db(), "SELECT MAX(max_at) FROM event_segments", 0);
  if (!latest.is_ok()) return latest.status();
  return std::max<UnixSeconds>(0, *latest);
}

Result<UnixSeconds> SqliteStore::earliest_event_time() {
  FULCRUM_WITH_READER(reader);
  return single_integer(reader.db(), "SELECT MIN(min_at) FROM event_segments", 0);
}

// --- experiment aggregates -----------------------------------------------------------------
// The experiment's exposure segments become arrays indexed by user key (first exposure time
// and variant per exposed user); the metric's segments are then joined by array lookup.

namespace {

// Visits every segment payload of one kind and key.
template <typename Visit>
Status each_segment(sqlite3* db, EventKind kind, const std::string& key, Visit visit) {
  Statement query(db, "SELECT payload FROM event_segments WHERE kind = ?1 AND key = ?2");
  query.bind(1, static_cast<std::int64_t>(kind)).bind(2, key);
  return each_segment_row(query, 0,
                          [&](const Statement&, SegmentReader& segment) { visit(segment); });
}

Status load_first_exposures(sqlite3* db, const std::string& experiment_id,
                            SqliteFirstExposures& out) {
  std::map<std::string, std::uint16_t, std::less<>> variant_ids;  // in order of appearance
  std::vector<std::uint16_t> raw_variant;
  std::vector<bool> multi_variant;
  {
    // Size the tables once: the largest user key, and the exposures as an upper bound.
    Statement sizes(db,
                    "SELECT (SELECT COALESCE(MAX(user_key), 0) FROM user_keys), "
                    "(SELECT COALESCE(SUM(event_count), 0) FROM event_segments "
                    "WHERE kind = ?1 AND key = ?2)");
    sizes.bind(1, static_cast<std::int64_t>(EventKind::kExposure)).bind(2, experiment_id);
    FULCRUM_RETURN_IF_ERROR(sizes.each_row([&](const Statement& row) {
      out.slot_of_key.assign(static_cast<std::size_t>(row.int64(0)) + 1, 0);
      const auto exposures = static_cast<std::size_t>(row.int64(1));
      out.first_at.reserve(exposures);
      raw_variant.reserve(exposures);
      multi_variant.reserve(exposures);
    }));
  }
  FULCRUM_RETURN_IF_ERROR(
      each_segment(db, EventKind::kExposure, experiment_id, [&](SegmentReader& segment) {
        // This segment's dictionary entries -> variant ids.
        std::vector<std::uint16_t> variant_of_string;
        variant_of_string.reserve(segment.strings().size());
        for (std::string_view name : segment.strings()) {
          auto found = variant_ids.find(name);
          if (found == variant_ids.end()) {
            found = variant_ids
                        .emplace(std::string(name), static_cast<std::uint16_t>(variant_ids.size()))
                        .first;
          }
          variant_of_string.push_back(found->second);
        }
        for (std::uint32_t i = 0; i < segment.count(); ++i) {
          const UserKey user = segment.user();
          const std::uint16_t variant =
              variant_of_string.empty() ? 0 : variant_of_string[segment.text_index()];
          const UnixSeconds at = segment.integer();
          if (!segment.status().is_ok()) return;
          if (user >= out.slot_of_key.size()) out.slot_of_key.resize(user + 1, 0);
          std::uint32_t& slot = out.slot_of_key[user];
          if (slot == 0) {
            out.first_at.push_back(at);
            raw_variant.push_back(variant);
            multi_variant.push_back(false);
            slot = static_cast<std::uint32_t>(out.first_at.size());
            continue;
          }
          const std::uint32_t index = slot - 1;
          if (raw_variant[index] != variant && !multi_variant[index]) {
            multi_variant[index] = true;
            ++out.multi_variant_users;
          }
          if (at < out.first_at[index]) {
            out.first_at[index] = at;
            raw_variant[index] = variant;
          }
        }
      }));
  // Renumber variants in name order so results come sorted by variant.
  std::vector<std::uint16_t> renumber(variant_ids.size());
  std::uint16_t rank = 0;
  for (const auto& [name, id] : variant_ids) {
    renumber[id] = rank++;
    out.variants.push_back(name);
  }
  out.variant_index.reserve(raw_variant.size());
  for (std::uint16_t id : raw_variant) out.variant_index.push_back(renumber[id]);
  return Status::ok();
}

// How many events ahead the joins prefetch their random lookups: enough to overlap the
// memory latency, few enough to stay within the CPU's outstanding-miss buffers.
constexpr std::size_t kPrefetchDistance = 16;

// One segment's events of a metric by exposed users: slot (exposed index), time, value.
struct JoinedEvents {
  std::vector<std::uint32_t> slots;
  std::vector<UnixSeconds> at;
  std::vector<double> value;
  void clear() {
    slots.clear();
    at.clear();
    value.clear();
  }
};

// Calls visit(const JoinedEvents&) once per segment of the metric with its events by exposed
// users. Lookups are random accesses into tables of millions of users, so a segment is
// decoded first and its lookups prefetched a few events ahead; visitors prefetch their own
// per-slot data the same way.
template <typename Visit>
Status join_metric_events(sqlite3* db, const std::string& metric,
                          const SqliteFirstExposures& exposed, Visit visit) {
  std::vector<UserKey> users;
  std::vector<UnixSeconds> at;
  std::vector<double> value;
  JoinedEvents joined;
  const std::size_t table_size = exposed.slot_of_key.size();
  return each_segment(db, EventKind::kMetric, metric, [&](SegmentReader& segment) {
    users.resize(segment.count());
    at.resize(segment.count());
    value.resize(segment.count());
    for (std::uint32_t i = 0; i < segment.count(); ++i) {
      users[i] = segment.user();
      value[i] = segment.real();
      at[i] = segment.integer();
    }
    if (!segment.status().is_ok()) return;
    joined.clear();
    for (std::uint32_t i = 0; i < segment.count(); ++i) {
      if (i + kPrefetchDistance < segment.count() && users[i + kPrefetchDistance] < table_size) {
        __builtin_prefetch(&exposed.slot_of_key[users[i + kPrefetchDistance]]);
      }
      if (users[i] >= table_size) continue;
      const std::uint32_t slot = exposed.slot_of_key[users[i]];
      if (slot == 0) continue;
      joined.slots.push_back(slot - 1);
      joined.at.push_back(at[i]);
      joined.value.push_back(value[i]);
    }
    visit(joined);
  });
}

}  // namespace

Result<std::shared_ptr<const SqliteFirstExposures>> SqliteStore::first_exposures(
    sqlite3* db, const std::string& experiment_id) {
  // Segment ids only grow (a topped-up segment is re-inserted under a new id), so the
  // largest id of the experiment's segments tells whether anything changed since the
  // cached table was built, also when another process wrote the file.
  std::int64_t newest_segment = 0;
  {
    Statement query(db,
                    "SELECT COALESCE(MAX(segment_id), 0) FROM event_segments "
                    "WHERE kind = ?1 AND key = ?2");
    query.bind(1, static_cast<std::int64_t>(EventKind::kExposure)).bind(2, experiment_id);
    FULCRUM_RETURN_IF_ERROR(
        query.each_row([&](const Statement& row) { newest_segment = row.int64(0); }));
  }
  {
    std::lock_guard lock(exposure_cache_mutex_);
    auto cached = exposure_cache_.find(experiment_id);
    if (cached != exposure_cache_.end() && cached->second.first == newest_segment) {
      return cached->second.second;
    }
  }
  auto loaded = std::make_shared<SqliteFirstExposures>();
  FULCRUM_RETURN_IF_ERROR(load_first_exposures(db, experiment_id, *loaded));
  std::lock_guard lock(exposure_cache_mutex_);
  if (exposure_cache_.size() > 16) exposure_cache_.clear();  // bound memory
  exposure_cache_[experiment_id] = {newest_segment, loaded};
  return std::shared_ptr<const SqliteFirstExposures>(loaded);
}

namespace {

// One cache line per exposed user holds what the join touches.
struct ExposedUserSums {
  UnixSeconds first_at;
  double post = 0, pre = 0;
};

// Every exposed user's sums of the metric at or after first exposure (post) and in the
// `pre_period_seconds` before it (pre), by exposed slot.
Status exposed_user_sums(sqlite3* db, const std::string& metric,
                         const SqliteFirstExposures& exposed, UnixSeconds pre_period_seconds,
                         std::vector<ExposedUserSums>& per_user) {
  per_user.assign(exposed.first_at.size(), ExposedUserSums{});
  for (std::size_t slot = 0; slot < per_user.size(); ++slot) {
    per_user[slot].first_at = exposed.first_at[slot];
  }
  return join_metric_events(db, metric, exposed, [&](const JoinedEvents& events) {
    for (std::size_t i = 0; i < events.slots.size(); ++i) {
      if (i + kPrefetchDistance < events.slots.size()) {
        __builtin_prefetch(&per_user[events.slots[i + kPrefetchDistance]], 1);
      }
      ExposedUserSums& user = per_user[events.slots[i]];
      if (events.at[i] >= user.first_at) {
        user.post += events.value[i];
      } else if (events.at[i] >= user.first_at - pre_period_seconds) {
        user.pre += events.value[i];
      }
    }
  });
}

}  // namespace

Result<std::vector<VariantMetricStats>> SqliteStore::variant_metric_stats(
    const std::string& experiment_id, const std::string& metric, UnixSeconds pre_period_seconds) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  std::vector<ExposedUserSums> per_user;
  FULCRUM_RETURN_IF_ERROR(
      exposed_user_sums(reader.db(), metric, exposed, pre_period_seconds, per_user));
  std::vector<VariantMetricStats> stats(exposed.variants.size());
  for (std::size_t v = 0; v < stats.size(); ++v) stats[v].variant = exposed.variants[v];
  for (std::size_t slot = 0; slot < per_user.size(); ++slot) {
    VariantMetricStats& variant = stats[exposed.variant_index[slot]];
    const double post = per_user[slot].post, pre = per_user[slot].pre;
    variant.users += 1;
    variant.converted += post > 0 ? 1 : 0;
    variant.sum += post;
    variant.sum_squares += post * post;
    variant.pre_sum += pre;
    variant.pre_sum_squares += pre * pre;
    variant.cross_sum += pre * post;
  }
  return stats;
}

Result<ExposedUserMetric> SqliteStore::exposed_user_metric(
    const std::string& experiment_id, const std::string& metric,
    std::span<const UnixSeconds> pre_window_edges) {
  FULCRUM_RETURN_IF_ERROR(check_pre_window_edges(pre_window_edges));
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  auto names = user_names(reader.db());
  if (!names.is_ok()) return names.status();
  const std::size_t users = exposed.first_at.size();
  const std::size_t windows = pre_window_edges.empty() ? 0 : pre_window_edges.size() - 1;
  ExposedUserMetric out;
  out.variants = exposed.variants;
  out.windows = windows;
  out.user_ids.resize(users);
  out.user_keys.resize(users);
  out.variant_index.assign(exposed.variant_index.begin(), exposed.variant_index.end());
  out.first_exposure_at = exposed.first_at;
  out.post.assign(users, 0);
  out.pre.assign(users * windows, 0);
  for (std::size_t key = 0; key < exposed.slot_of_key.size(); ++key) {
    const std::uint32_t slot = exposed.slot_of_key[key];
    if (slot == 0) continue;
    out.user_keys[slot - 1] = static_cast<std::uint32_t>(key);
    if (key < (*names)->size()) out.user_ids[slot - 1] = (**names)[key];
  }
  const UnixSeconds earliest = windows > 0 ? pre_window_edges.back() : 0;
  FULCRUM_RETURN_IF_ERROR(
      join_metric_events(reader.db(), metric, exposed, [&](const JoinedEvents& events) {
        for (std::size_t i = 0; i < events.slots.size(); ++i) {
          const std::uint32_t slot = events.slots[i];
          const UnixSeconds first = out.first_exposure_at[slot];
          if (events.at[i] >= first) {
            out.post[slot] += events.value[i];
            continue;
          }
          // before = first - at > 0 falls in window w when edges[w] < before <= edges[w+1].
          const UnixSeconds before = first - events.at[i];
          if (before > earliest) continue;
          std::size_t w = 0;
          while (before > pre_window_edges[w + 1]) ++w;
          out.pre[slot * windows + w] += events.value[i];
        }
      }));
  return out;
}

Result<std::vector<SliceMetricStats>> SqliteStore::sliced_metric_stats(
    const std::string& experiment_id, const std::string& metric, const std::string& attribute,
    double cap) {
  if (!is_slice_attribute_name(attribute)) {
    return invalid_argument("not a user attribute name ([A-Za-z_][A-Za-z0-9_-]*, at most 64)",
                            "slice");
  }
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  std::vector<ExposedUserSums> per_user;
  FULCRUM_RETURN_IF_ERROR(exposed_user_sums(reader.db(), metric, exposed, 0, per_user));
  // The attribute's value per exposed slot, as an index into `slice_names` (0: ""). The
  // users come back ordered by value, so a new name is made only when the value changes.
  std::vector<std::string> slice_names = {""};
  std::vector<std::uint32_t> slice_of_slot(per_user.size(), 0);
  {
    std::string value_sql;
    if (attribute == "tier") {
      value_sql = "CAST(u.tier AS TEXT)";
    } else if (attribute == "country" || attribute == "app_version") {
      value_sql = "u." + attribute;
    } else {
      value_sql = "json_extract(u.attributes, ?1)";
    }
    // The attribute name is checked above, so the JSON path needs no escaping.
    const std::string json_path = "$.\"" + attribute + "\"";
    const std::string sql = "SELECT COALESCE(CAST(" + value_sql +
                            " AS TEXT), '') AS slice, k.user_key FROM users u "
                            "JOIN user_keys k ON k.user_id = u.user_id ORDER BY slice";
    Statement query(reader.db(), sql.c_str());
    if (value_sql.rfind("json_extract", 0) == 0) query.bind(1, std::string_view(json_path));
    std::string previous;
    bool have_previous = false;
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      const auto key = static_cast<std::uint64_t>(row.int64(1));
      if (key >= exposed.slot_of_key.size() || exposed.slot_of_key[key] == 0) return;
      std::string value = row.text(0);
      if (value.empty()) return;  // slice 0
      if (!have_previous || value != previous) {
        slice_names.push_back(value);
        previous = std::move(value);
        have_previous = true;
      }
      slice_of_slot[exposed.slot_of_key[key] - 1] =
          static_cast<std::uint32_t>(slice_names.size() - 1);
    }));
  }
  const std::size_t variants = exposed.variants.size();
  std::vector<SliceMetricStats> cells(slice_names.size() * variants);
  for (std::size_t slot = 0; slot < per_user.size(); ++slot) {
    SliceMetricStats& cell = cells[slice_of_slot[slot] * variants + exposed.variant_index[slot]];
    const double post = per_user[slot].post, kept = std::min(post, cap);
    cell.users += 1;
    cell.converted += post > 0 ? 1 : 0;
    cell.sum += kept;
    cell.sum_squares += kept * kept;
  }
  std::vector<SliceMetricStats> rows;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (cells[i].users == 0) continue;
    cells[i].slice = slice_names[i / variants];
    cells[i].variant = exposed.variants[i % variants];
    if (attribute == "tier" && !cells[i].slice.empty()) {
      int tier = 0;
      std::from_chars(cells[i].slice.data(), cells[i].slice.data() + cells[i].slice.size(), tier);
      cells[i].slice = tier_name(static_cast<Tier>(tier));
    }
    rows.push_back(std::move(cells[i]));
  }
  return rows;
}

Status SqliteStore::metric_period_sums(sqlite3* db, const std::string& metric,
                                       const std::vector<UnixSeconds>& edges,
                                       std::vector<double>& sums) {
  const std::size_t periods = edges.size() - 1;
  std::int64_t largest_key = 0;
  {
    Statement sizes(db, "SELECT COALESCE(MAX(user_key), 0) FROM user_keys");
    FULCRUM_RETURN_IF_ERROR(
        sizes.each_row([&](const Statement& row) { largest_key = row.int64(0); }));
  }
  sums.assign((static_cast<std::size_t>(largest_key) + 1) * periods, 0.0);
  const std::size_t keys = static_cast<std::size_t>(largest_key) + 1;
  return each_segment(db, EventKind::kMetric, metric, [&](SegmentReader& segment) {
    for (std::uint32_t i = 0; i < segment.count(); ++i) {
      const UserKey user = segment.user();
      const double value = segment.real();
      const UnixSeconds at = segment.integer();
      if (!segment.status().is_ok()) return;
      if (user >= keys || at < edges.front() || at >= edges.back()) continue;
      // The period whose [edges[p], edges[p + 1]) holds `at`.
      const auto period = static_cast<std::size_t>(
          std::upper_bound(edges.begin(), edges.end(), at) - edges.begin() - 1);
      sums[static_cast<std::size_t>(user) * periods + period] += value;
    }
  });
}

Result<std::vector<Store::DailyCumulative>> SqliteStore::daily_cumulative(
    const std::string& experiment_id, const std::string& metric) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  // A user converts at their first positive value at or after first exposure.
  std::vector<UnixSeconds> converted_at(exposed.first_at.size(), INT64_MAX);
  FULCRUM_RETURN_IF_ERROR(
      join_metric_events(reader.db(), metric, exposed, [&](const JoinedEvents& events) {
        for (std::size_t i = 0; i < events.slots.size(); ++i) {
          if (i + kPrefetchDistance < events.slots.size()) {
            __builtin_prefetch(&exposed.first_at[events.slots[i + kPrefetchDistance]]);
            __builtin_prefetch(&converted_at[events.slots[i + kPrefetchDistance]], 1);
          }
          const std::uint32_t slot = events.slots[i];
          if (events.value[i] > 0 && events.at[i] >= exposed.first_at[slot] &&
              events.at[i] < converted_at[slot]) {
            converted_at[slot] = events.at[i];
          }
        }
      }));
  // Per variant and day: users first exposed that day, users first converting that day.
  std::unordered_map<UnixSeconds, std::size_t> index_of_day;
  std::vector<UnixSeconds> days;
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> by_day(exposed.variants.size());
  auto counts_on = [&](std::size_t variant,
                       UnixSeconds at) -> std::pair<std::int64_t, std::int64_t>& {
    const auto [found, added] = index_of_day.try_emplace(floor_to_day(at), days.size());
    if (added) days.push_back(found->first);
    auto& counts = by_day[variant];
    if (counts.size() <= found->second) counts.resize(days.size());
    return counts[found->second];
  };
  for (std::size_t slot = 0; slot < converted_at.size(); ++slot) {
    const std::size_t variant = exposed.variant_index[slot];
    counts_on(variant, exposed.first_at[slot]).first += 1;
    if (converted_at[slot] != INT64_MAX) counts_on(variant, converted_at[slot]).second += 1;
  }
  std::vector<std::size_t> day_order(days.size());
  for (std::size_t i = 0; i < day_order.size(); ++i) day_order[i] = i;
  std::sort(day_order.begin(), day_order.end(),
            [&](std::size_t a, std::size_t b) { return days[a] < days[b]; });
  std::vector<DailyCumulative> rows;
  for (std::size_t v = 0; v < by_day.size(); ++v) {
    std::int64_t users = 0, converted = 0;
    by_day[v].resize(days.size());
    for (std::size_t day : day_order) {
      const auto [exposed_that_day, converted_that_day] = by_day[v][day];
      if (exposed_that_day == 0 && converted_that_day == 0) continue;  // nothing that day
      users += exposed_that_day;
      converted += converted_that_day;
      rows.push_back(DailyCumulative{days[day], exposed.variants[v], users, converted});
    }
  }
  return rows;
}

Result<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::exposure_counts(
    const std::string& experiment_id) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  std::vector<std::pair<std::string, std::int64_t>> counts;
  for (const auto& name : exposed.variants) counts.emplace_back(name, 0);
  for (std::uint16_t variant : exposed.variant_index) counts[variant].second += 1;
  return counts;
}

Result<std::int64_t> SqliteStore::count_multi_variant_users(const std::string& experiment_id) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  return (*snapshot)->multi_variant_users;
}

Result<std::optional<std::string>> SqliteStore::first_exposure_variant(
    const std::string& experiment_id, const std::string& user_id) {
  FULCRUM_WITH_READER(reader);
  std::optional<std::uint32_t> user_key;
  {
    Statement query(reader.db(), "SELECT user_key FROM user_keys WHERE user_id = ?1");
    query.bind(1, user_id);
    FULCRUM_RETURN_IF_ERROR(query.each_row(
        [&](const Statement& row) { user_key = static_cast<std::uint32_t>(row.int64(0)); }));
  }
  if (!user_key) return std::optional<std::string>();
  // The cached first-exposure table answers by array lookup; it is rebuilt when the
  // experiment's segments changed since it was built.
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  if (*user_key >= exposed.slot_of_key.size()) return std::optional<std::string>();
  const std::uint32_t slot = exposed.slot_of_key[*user_key];
  if (slot == 0) return std::optional<std::string>();
  return std::optional<std::string>(exposed.variants[exposed.variant_index[slot - 1]]);
}

// --- migration 2 ------------------------------------------------------------------------------

Status SqliteStore::convert_legacy_events() {
  constexpr std::size_t kChunk = 65'536;
  auto convert = [this]<typename Event>(const char* sql, auto read_row,
                                        std::vector<Event> chunk) -> Status {
    Statement query(writer_, sql);
    Status written = Status::ok();
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      if (!written.is_ok()) return;
      chunk.push_back(read_row(row));
      if (chunk.size() == kChunk) {
        written = write_segments(chunk);
        chunk.clear();
      }
    }));
    FULCRUM_RETURN_IF_ERROR(written);
    return write_segments(chunk);
  };
  FULCRUM_RETURN_IF_ERROR(load_user_keys());
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT user_id, feature, at, count FROM feature_usage ORDER BY rowid",
      [](const Statement& row) {
        return FeatureUsageEvent{row.text(0), row.text(1), row.int64(2),
                                 static_cast<std::int32_t>(row.int64(3))};
      },
      std::vector<FeatureUsageEvent>{}));
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT user_id, at, duration_seconds FROM sessions ORDER BY rowid",
      [](const Statement& row) {
        return SessionEvent{row.text(0), row.int64(1), static_cast<std::int32_t>(row.int64(2))};
      },
      std::vector<SessionEvent>{}));
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT user_id, at, kind, from_tier, to_tier FROM subscription_changes ORDER BY rowid",
      [](const Statement& row) {
        return SubscriptionChangeEvent{
            row.text(0), row.int64(1), static_cast<SubscriptionChangeKind>(row.int64(2)),
            static_cast<Tier>(row.int64(3)), static_cast<Tier>(row.int64(4))};
      },
      std::vector<SubscriptionChangeEvent>{}));
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT user_id, at, succeeded, amount_minor FROM payments ORDER BY rowid",
      [](const Statement& row) {
        return PaymentEvent{row.text(0), row.int64(1), row.int64(2) != 0, row.int64(3)};
      },
      std::vector<PaymentEvent>{}));
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT user_id, feature, at FROM paywall_hits ORDER BY rowid",
      [](const Statement& row) {
        return PaywallHitEvent{row.text(0), row.text(1), row.int64(2)};
      },
      std::vector<PaywallHitEvent>{}));
  FULCRUM_RETURN_IF_ERROR(convert(
      "SELECT experiment_id, user_id, variant, at FROM exposures ORDER BY rowid",
      [](const Statement& row) {
        return ExposureEvent{row.text(0), row.text(1), row.text(2), row.int64(3)};
      },
      std::vector<ExposureEvent>{}));
  return convert(
      "SELECT user_id, metric, value, at FROM metric_events ORDER BY rowid",
      [](const Statement& row) {
        return MetricEvent{row.text(0), row.text(1), row.real(2), row.int64(3)};
      },
      std::vector<MetricEvent>{});
}

}  // namespace fulcrum
