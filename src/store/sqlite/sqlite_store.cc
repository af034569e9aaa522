#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <unordered_map>
#include <map>
#include <nlohmann/json.hpp>

#include "store/sqlite/sqlite_schema.h"

namespace fulcrum {

struct SqliteTransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

struct SqliteFirstExposures {
  std::vector<std::string> variants;  // distinct variant names, sorted
  std::unordered_map<std::string, std::uint32_t, SqliteTransparentHash, std::equal_to<>> index_of_user;
  std::vector<std::uint16_t> variant_index;
  std::vector<UnixSeconds> first_at;
  std::int64_t multi_variant_users = 0;  // users exposed to more than one variant
};
namespace {

Status sqlite_error(sqlite3* db, const std::string& what) {
  return internal_error(what + ": " + (db ? sqlite3_errmsg(db) : "cannot open database"));
}

Status exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return internal_error(std::string("sqlite: ") + message);
  }
  return Status::ok();
}

// RAII prepared statement with positional binding helpers.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      status_ = sqlite_error(db, std::string("prepare failed for: ") + sql);
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  const Status& status() const { return status_; }
  Statement& bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Statement& bind(int index, double value) {
    sqlite3_bind_double(stmt_, index, value);
    return *this;
  }
  Statement& bind(int index, std::string_view value) {
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind_null(int index) {
    sqlite3_bind_null(stmt_, index);
    return *this;
  }
  // Returns SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  sqlite3_stmt* handle() const { return stmt_; }
  // Runs a statement that returns no rows and resets it for reuse.
  Status run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    if (rc != SQLITE_DONE) return sqlite_error(db_, "write failed");
    return Status::ok();
  }
  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }
  // Visits every row; returns an error status if stepping fails.
  template <typename Fn>
  Status each_row(Fn&& fn) {
    if (!status_.is_ok()) return status_;
    for (;;) {
      const int rc = step();
      if (rc == SQLITE_DONE) return Status::ok();
      if (rc != SQLITE_ROW) return sqlite_error(db_, "query failed");
      fn(*this);
    }
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
};

// Begin/commit with rollback when the scope exits without commit.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { status_ = exec(db, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (status_.is_ok() && !committed_) exec(db_, "ROLLBACK");
  }
  const Status& status() const { return status_; }
  Status commit() {
    FULCRUM_RETURN_IF_ERROR(exec(db_, "COMMIT"));
    committed_ = true;
    return Status::ok();
  }

 private:
  sqlite3* db_;
  Status status_;
  bool committed_ = false;
};

std::string attributes_to_json(const std::map<std::string, std::string>& attributes) {
  return nlohmann::json(attributes).dump();
}

std::map<std::string, std::string> attributes_from_json(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  std::map<std::string, std::string> attributes;
  if (parsed.is_object()) {
    for (auto& [key, value] : parsed.items()) {
      attributes[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  return attributes;
}

User read_user(const Statement& row) {
  User user;
  user.user_id = row.text(0);
  user.tier = static_cast<Tier>(row.int64(1));
  user.signup_at = row.int64(2);
  user.country = row.text(3);
  user.app_version = row.text(4);
  user.attributes = attributes_from_json(row.text(5));
  return user;
}

// WHERE clause for a time range; unbounded sides are omitted so full scans stay table scans.
std::string range_clause(TimeRange range) {
  std::string clause;
  if (range.from != 0 && range.from != INT64_MIN) clause += " AND at >= " + std::to_string(range.from);
  if (range.to != INT64_MAX) clause += " AND at < " + std::to_string(range.to);
  return clause.empty() ? std::string() : " WHERE 1=1" + clause;
}

template <typename Event, typename Read>
Status scan_table(sqlite3* db, const std::string& columns_and_table, TimeRange range,
                  const std::function<void(const Event&)>& visit, Read read) {
  const std::string sql = "SELECT " + columns_and_table + range_clause(range);
  Statement statement(db, sql.c_str());
  return statement.each_row([&](const Statement& row) { visit(read(row)); });
}

}  // namespace

class SqliteStore::Reader {
 public:
  explicit Reader(SqliteStore& store) : store_(store), connection_(store.acquire_reader()) {}
  ~Reader() {
    if (connection_.is_ok()) store_.release_reader(*connection_);
  }
  const Status& status() const { return connection_.status(); }
  sqlite3* db() const { return *connection_; }

 private:
  SqliteStore& store_;
  Result<sqlite3*> connection_;
};

#define FULCRUM_WITH_READER(reader)         \
  Reader reader(*this);                     \
  if (!reader.status().is_ok()) return reader.status()

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  for (sqlite3* db : idle_readers_) sqlite3_close_v2(db);
  sqlite3_close_v2(writer_);
}

Result<sqlite3*> SqliteStore::open_connection() const {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path_.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Status error = sqlite_error(db, "cannot open " + path_);
    sqlite3_close_v2(db);
    return error;
  }
  sqlite3_busy_timeout(db, 10000);
  // synchronous=FULL: a commit is on disk before ingest() returns, so an acknowledged batch
  // survives a crash of the process and of the machine.
  Status status = exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                       "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                       "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;");
  if (!status.is_ok()) {
    sqlite3_close_v2(db);
    return status;
  }
  return db;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path));
  auto writer = store->open_connection();
  if (!writer.is_ok()) return writer.status();
  store->writer_ = *writer;
  sqlite3* db = store->writer_;
  FULCRUM_RETURN_IF_ERROR(exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"));
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  std::int64_t version = 0;
  bool has_row = false;
  {
    Statement query(db, "SELECT version FROM schema_version");
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      version = row.int64(0);
      has_row = true;
    }));
  }
  const auto& scripts = sqlite::migrations();
  if (version > static_cast<std::int64_t>(scripts.size())) {
    return Status(StatusCode::kFailedPrecondition,
                  "database schema version " + std::to_string(version) +
                      " is newer than this build supports (" + std::to_string(scripts.size()) + ")");
  }
  for (auto i = static_cast<std::size_t>(version); i < scripts.size(); ++i) {
    FULCRUM_RETURN_IF_ERROR(exec(db, std::string(scripts[i]).c_str()));
  }
  FULCRUM_RETURN_IF_ERROR(exec(db, has_row ? "DELETE FROM schema_version" : "SELECT 1"));
  Statement record(db, "INSERT INTO schema_version(version) VALUES (?1)");
  FULCRUM_RETURN_IF_ERROR(record.bind(1, static_cast<std::int64_t>(scripts.size())).run());
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return store;
}

Result<sqlite3*> SqliteStore::acquire_reader() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_readers_.empty()) {
      sqlite3* db = idle_readers_.back();
      idle_readers_.pop_back();
      return db;
    }
  }
  return open_connection();
}

void SqliteStore::release_reader(sqlite3* db) {
  std::lock_guard lock(pool_mutex_);
  idle_readers_.push_back(db);
}

Result<int> SqliteStore::schema_version() {
  FULCRUM_WITH_READER(reader);
  int version = 0;
  Statement query(reader.db(), "SELECT version FROM schema_version");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    version = static_cast<int>(row.int64(0));
  }));
  return version;
}

Status SqliteStore::ingest(const EventBatch& batch) {
  if (batch.size() == 0) return Status::ok();
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  if (!batch.users.empty()) {
    Statement insert(db,
                     "INSERT INTO users(user_id,tier,signup_at,country,app_version,attributes) "
                     "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(user_id) DO UPDATE SET "
                     "tier=excluded.tier, signup_at=excluded.signup_at, country=excluded.country,"
                     " app_version=excluded.app_version, attributes=excluded.attributes");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const User& user : batch.users) {
      const std::string attributes = attributes_to_json(user.attributes);
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, user.user_id)
                                  .bind(2, static_cast<std::int64_t>(user.tier))
                                  .bind(3, user.signup_at)
                                  .bind(4, user.country)
                                  .bind(5, user.app_version)
                                  .bind(6, attributes)
                                  .run());
    }
  }
  if (!batch.features.empty()) {
    Statement insert(db,
                     "INSERT INTO features(name,required_tier,monthly_cost_minor,"
                     "monthly_value_minor,category) VALUES(?1,?2,?3,?4,?5) ON CONFLICT(name) DO "
                     "UPDATE SET required_tier=excluded.required_tier, monthly_cost_minor="
                     "excluded.monthly_cost_minor, monthly_value_minor=excluded.monthly_value_minor,"
                     " category=excluded.category");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const Feature& feature : batch.features) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, feature.name)
                                  .bind(2, static_cast<std::int64_t>(feature.required_tier))
                                  .bind(3, feature.monthly_maintenance_cost_minor)
                                  .bind(4, feature.monthly_revenue_value_minor)
                                  .bind(5, feature.category)
                                  .run());
    }
  }
  if (!batch.feature_usage.empty()) {
    Statement insert(db, "INSERT INTO feature_usage(user_id,feature,at,count) VALUES(?1,?2,?3,?4)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.feature_usage) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.user_id)
                                  .bind(2, event.feature)
                                  .bind(3, event.at)
                                  .bind(4, static_cast<std::int64_t>(event.count))
                                  .run());
    }
  }
  if (!batch.sessions.empty()) {
    Statement insert(db, "INSERT INTO sessions(user_id,at,duration_seconds) VALUES(?1,?2,?3)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.sessions) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.user_id)
                                  .bind(2, event.at)
                                  .bind(3, static_cast<std::int64_t>(event.duration_seconds))
                                  .run());
    }
  }
  if (!batch.subscription_changes.empty()) {
    Statement insert(db,
                     "INSERT INTO subscription_changes(user_id,at,kind,from_tier,to_tier) "
                     "VALUES(?1,?2,?3,?4,?5)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.subscription_changes) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.user_id)
                                  .bind(2, event.at)
                                  .bind(3, static_cast<std::int64_t>(event.kind))
                                  .bind(4, static_cast<std::int64_t>(event.from_tier))
                                  .bind(5, static_cast<std::int64_t>(event.to_tier))
                                  .run());
    }
  }
  if (!batch.payments.empty()) {
    Statement insert(db,
                     "INSERT INTO payments(user_id,at,succeeded,amount_minor) VALUES(?1,?2,?3,?4)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.payments) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.user_id)
                                  .bind(2, event.at)
                                  .bind(3, static_cast<std::int64_t>(event.succeeded ? 1 : 0))
                                  .bind(4, event.amount_minor)
                                  .run());
    }
  }
  if (!batch.paywall_hits.empty()) {
    Statement insert(db, "INSERT INTO paywall_hits(user_id,feature,at) VALUES(?1,?2,?3)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.paywall_hits) {
      FULCRUM_RETURN_IF_ERROR(
          insert.bind(1, event.user_id).bind(2, event.feature).bind(3, event.at).run());
    }
  }
  if (!batch.exposures.empty()) {
    Statement insert(db,
                     "INSERT INTO exposures(experiment_id,user_id,variant,at) VALUES(?1,?2,?3,?4)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.exposures) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.experiment_id)
                                  .bind(2, event.user_id)
                                  .bind(3, event.variant)
                                  .bind(4, event.at)
                                  .run());
    }
  }
  if (!batch.metric_events.empty()) {
    Statement insert(db, "INSERT INTO metric_events(user_id,metric,value,at) VALUES(?1,?2,?3,?4)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : batch.metric_events) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.user_id)
                                  .bind(2, event.metric)
                                  .bind(3, event.value)
                                  .bind(4, event.at)
                                  .run());
    }
  }
  return transaction.commit();
}

Result<std::optional<User>> SqliteStore::get_user(const std::string& user_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id,tier,signup_at,country,app_version,attributes FROM users "
                  "WHERE user_id=?1");
  query.bind(1, user_id);
  std::optional<User> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_user(row); }));
  return found;
}

Status SqliteStore::scan_users(const std::function<void(const User&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id,tier,signup_at,country,app_version,attributes FROM users");
  return query.each_row([&](const Statement& row) { visit(read_user(row)); });
}

Result<std::int64_t> SqliteStore::count_users() {
  FULCRUM_WITH_READER(reader);
  std::int64_t count = 0;
  Statement query(reader.db(), "SELECT COUNT(*) FROM users");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { count = row.int64(0); }));
  return count;
}

Result<std::vector<Feature>> SqliteStore::list_features() {
  FULCRUM_WITH_READER(reader);
  std::vector<Feature> features;
  Statement query(reader.db(),
                  "SELECT name,required_tier,monthly_cost_minor,monthly_value_minor,category "
                  "FROM features ORDER BY name");
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    features.push_back(Feature{row.text(0), static_cast<Tier>(row.int64(1)), row.int64(2),
                               row.int64(3), row.text(4)});
  }));
  return features;
}

Status SqliteStore::scan_feature_usage(
    TimeRange range, const std::function<void(const FeatureUsageEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<FeatureUsageEvent>(
      reader.db(), "user_id,feature,at,count FROM feature_usage", range, visit,
      [](const Statement& row) {
        return FeatureUsageEvent{row.text(0), row.text(1), row.int64(2),
                                 static_cast<std::int32_t>(row.int64(3))};
      });
}

Status SqliteStore::scan_sessions(TimeRange range,
                                  const std::function<void(const SessionEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<SessionEvent>(
      reader.db(), "user_id,at,duration_seconds FROM sessions", range, visit,
      [](const Statement& row) {
        return SessionEvent{row.text(0), row.int64(1), static_cast<std::int32_t>(row.int64(2))};
      });
}

Status SqliteStore::scan_subscription_changes(
    TimeRange range, const std::function<void(const SubscriptionChangeEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<SubscriptionChangeEvent>(
      reader.db(), "user_id,at,kind,from_tier,to_tier FROM subscription_changes", range, visit,
      [](const Statement& row) {
        return SubscriptionChangeEvent{row.text(0), row.int64(1),
                                       static_cast<SubscriptionChangeKind>(row.int64(2)),
                                       static_cast<Tier>(row.int64(3)),
                                       static_cast<Tier>(row.int64(4))};
      });
}

Status SqliteStore::scan_payments(TimeRange range,
                                  const std::function<void(const PaymentEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<PaymentEvent>(
      reader.db(), "user_id,at,succeeded,amount_minor FROM payments", range, visit,
      [](const Statement& row) {
        return PaymentEvent{row.text(0), row.int64(1), row.int64(2) != 0, row.int64(3)};
      });
}

Status SqliteStore::scan_paywall_hits(TimeRange range,
                                      const std::function<void(const PaywallHitEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<PaywallHitEvent>(
      reader.db(), "user_id,feature,at FROM paywall_hits", range, visit,
      [](const Statement& row) {
        return PaywallHitEvent{row.text(0), row.text(1), row.int64(2)};
      });
}

Status SqliteStore::scan_metric_events(TimeRange range,
                                       const std::function<void(const MetricEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  return scan_table<MetricEvent>(
      reader.db(), "user_id,metric,value,at FROM metric_events", range, visit,
      [](const Statement& row) {
        return MetricEvent{row.text(0), row.text(1), row.real(2), row.int64(3)};
      });
}

Status SqliteStore::scan_exposures(const std::string& experiment_id,
                                   const std::function<void(const ExposureEvent&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT experiment_id,user_id,variant,at FROM exposures WHERE experiment_id=?1");
  query.bind(1, experiment_id);
  return query.each_row([&](const Statement& row) {
    visit(ExposureEvent{row.text(0), row.text(1), row.text(2), row.int64(3)});
  });
}

Result<UnixSeconds> SqliteStore::latest_event_time() {
  FULCRUM_WITH_READER(reader);
  UnixSeconds latest = 0;
  for (const char* table : {"feature_usage", "sessions", "subscription_changes", "payments",
                            "paywall_hits", "exposures", "metric_events"}) {
    const std::string sql = std::string("SELECT MAX(at) FROM ") + table;
    Statement query(reader.db(), sql.c_str());
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      if (!row.is_null(0)) latest = std::max(latest, row.int64(0));
    }));
  }
  return latest;
}

namespace {

// Experiment analysis streams the experiment's exposures into a hash table of first
// exposures, then streams the metric's events once, joining in memory. Both reads use
// append-friendly indexes (experiment_id, metric) so ingestion never pays for random
// b-tree inserts; a correlated-subquery plan instead does one probe per user and metric.




std::string_view column_view(sqlite3_stmt* stmt, int column) {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return data ? std::string_view(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
              : std::string_view();
}

Status load_first_exposures(sqlite3* db, const std::string& experiment_id, SqliteFirstExposures& out) {
  Statement query(db, "SELECT user_id, at, variant FROM exposures WHERE experiment_id = ?1");
  FULCRUM_RETURN_IF_ERROR(query.status());
  query.bind(1, experiment_id);
  std::map<std::string, std::uint16_t, std::less<>> variant_ids;
  std::vector<std::uint16_t> raw_variant;
  std::vector<bool> multi_variant;
  for (;;) {
    const int rc = query.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_error(db, "reading exposures");
    sqlite3_stmt* stmt = query.handle();
    const UnixSeconds at = sqlite3_column_int64(stmt, 1);
    const std::string_view variant = column_view(stmt, 2);
    auto found_variant = variant_ids.find(variant);
    if (found_variant == variant_ids.end()) {
      found_variant = variant_ids.emplace(std::string(variant),
                                          static_cast<std::uint16_t>(variant_ids.size())).first;
    }
    const std::string_view user = column_view(stmt, 0);
    auto found_user = out.index_of_user.find(user);
    if (found_user == out.index_of_user.end()) {
      out.index_of_user.emplace(std::string(user), static_cast<std::uint32_t>(out.first_at.size()));
      out.first_at.push_back(at);
      raw_variant.push_back(found_variant->second);
      multi_variant.push_back(false);
    } else {
      const std::uint32_t user_index = found_user->second;
      if (raw_variant[user_index] != found_variant->second && !multi_variant[user_index]) {
        multi_variant[user_index] = true;
        ++out.multi_variant_users;
      }
      if (at < out.first_at[user_index]) {
        out.first_at[user_index] = at;
        raw_variant[user_index] = found_variant->second;
      }
    }
  }
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

// Calls visit(exposed user index, at, value) for each event of the metric by an exposed user.
template <typename Visit>
Status join_metric_events(sqlite3* db, const std::string& metric, const SqliteFirstExposures& exposed,
                          Visit visit) {
  Statement query(db, "SELECT user_id, at, value FROM metric_events WHERE metric = ?1");
  FULCRUM_RETURN_IF_ERROR(query.status());
  query.bind(1, metric);
  for (;;) {
    const int rc = query.step();
    if (rc == SQLITE_DONE) return Status::ok();
    if (rc != SQLITE_ROW) return sqlite_error(db, "reading metric events");
    sqlite3_stmt* stmt = query.handle();
    auto found = exposed.index_of_user.find(column_view(stmt, 0));
    if (found == exposed.index_of_user.end()) continue;
    visit(found->second, sqlite3_column_int64(stmt, 1), sqlite3_column_double(stmt, 2));
  }
}

}  // namespace

Result<std::shared_ptr<const SqliteFirstExposures>> SqliteStore::first_exposures(
    sqlite3* db, const std::string& experiment_id) {
  // Exposures are only ever appended, so the largest rowid tells whether anything changed
  // since the cached table was built (also when another process wrote the file).
  std::int64_t max_rowid = 0;
  {
    Statement query(db, "SELECT COALESCE(MAX(rowid), 0) FROM exposures");
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { max_rowid = row.int64(0); }));
  }
  {
    std::lock_guard lock(exposure_cache_mutex_);
    auto cached = exposure_cache_.find(experiment_id);
    if (cached != exposure_cache_.end() && cached->second.first == max_rowid) {
      return cached->second.second;
    }
  }
  auto loaded = std::make_shared<SqliteFirstExposures>();
  FULCRUM_RETURN_IF_ERROR(load_first_exposures(db, experiment_id, *loaded));
  std::lock_guard lock(exposure_cache_mutex_);
  if (exposure_cache_.size() > 16) exposure_cache_.clear();  // bound memory
  exposure_cache_[experiment_id] = {max_rowid, loaded};
  return std::shared_ptr<const SqliteFirstExposures>(loaded);
}

Result<std::vector<VariantMetricStats>> SqliteStore::variant_metric_stats(
    const std::string& experiment_id, const std::string& metric, UnixSeconds pre_period_seconds) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  std::vector<double> post(exposed.first_at.size(), 0.0), pre(exposed.first_at.size(), 0.0);
  FULCRUM_RETURN_IF_ERROR(join_metric_events(
      reader.db(), metric, exposed, [&](std::uint32_t user, UnixSeconds at, double value) {
        const UnixSeconds first = exposed.first_at[user];
        if (at >= first) {
          post[user] += value;
        } else if (at >= first - pre_period_seconds) {
          pre[user] += value;
        }
      }));
  std::vector<VariantMetricStats> stats(exposed.variants.size());
  for (std::size_t v = 0; v < stats.size(); ++v) stats[v].variant = exposed.variants[v];
  for (std::size_t user = 0; user < post.size(); ++user) {
    VariantMetricStats& variant = stats[exposed.variant_index[user]];
    variant.users += 1;
    variant.converted += post[user] > 0 ? 1 : 0;
    variant.sum += post[user];
    variant.sum_squares += post[user] * post[user];
    variant.pre_sum += pre[user];
    variant.pre_sum_squares += pre[user] * pre[user];
    variant.cross_sum += pre[user] * post[user];
  }
  return stats;
}

Result<std::vector<Store::DailyCumulative>> SqliteStore::daily_cumulative(
    const std::string& experiment_id, const std::string& metric) {
  FULCRUM_WITH_READER(reader);
  auto snapshot = first_exposures(reader.db(), experiment_id);
  if (!snapshot.is_ok()) return snapshot.status();
  const SqliteFirstExposures& exposed = **snapshot;
  // A user converts at their first positive value at or after first exposure.
  std::vector<UnixSeconds> converted_at(exposed.first_at.size(), INT64_MAX);
  FULCRUM_RETURN_IF_ERROR(join_metric_events(
      reader.db(), metric, exposed, [&](std::uint32_t user, UnixSeconds at, double value) {
        if (value > 0 && at >= exposed.first_at[user] && at < converted_at[user]) {
          converted_at[user] = at;
        }
      }));
  // Per variant and day: users first exposed that day, users first converting that day.
  std::vector<std::map<UnixSeconds, std::pair<std::int64_t, std::int64_t>>> by_day(
      exposed.variants.size());
  for (std::size_t user = 0; user < converted_at.size(); ++user) {
    auto& days = by_day[exposed.variant_index[user]];
    days[floor_to_day(exposed.first_at[user])].first += 1;
    if (converted_at[user] != INT64_MAX) days[floor_to_day(converted_at[user])].second += 1;
  }
  std::vector<DailyCumulative> rows;
  for (std::size_t v = 0; v < by_day.size(); ++v) {
    std::int64_t users = 0, converted = 0;
    for (const auto& [day, counts] : by_day[v]) {
      users += counts.first;
      converted += counts.second;
      rows.push_back(DailyCumulative{day, exposed.variants[v], users, converted});
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
  const SqliteFirstExposures& exposed = **snapshot;
  return exposed.multi_variant_users;
}

Result<std::int64_t> SqliteStore::put_document(const Document& doc) {
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  std::optional<std::int64_t> stored_version;
  {
    Statement query(db, "SELECT version FROM documents WHERE kind=?1 AND id=?2");
    query.bind(1, doc.kind).bind(2, doc.id);
    FULCRUM_RETURN_IF_ERROR(
        query.each_row([&](const Statement& row) { stored_version = row.int64(0); }));
  }
  if (doc.version == 0 && stored_version) {
    return Status(StatusCode::kAlreadyExists, doc.kind + " " + doc.id + " already exists");
  }
  if (stored_version.value_or(0) != doc.version) {
    return failed_precondition(doc.kind + " " + doc.id +
                               " was changed by someone else; reload and try again");
  }
  const std::int64_t new_version = doc.version + 1;
  Statement write(db,
                  "INSERT INTO documents(kind,id,status,body,created_at,updated_at,version) "
                  "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(kind,id) DO UPDATE SET "
                  "status=excluded.status, body=excluded.body, updated_at=excluded.updated_at, "
                  "version=excluded.version");
  FULCRUM_RETURN_IF_ERROR(write.bind(1, doc.kind)
                              .bind(2, doc.id)
                              .bind(3, doc.status)
                              .bind(4, doc.body)
                              .bind(5, doc.created_at)
                              .bind(6, doc.updated_at)
                              .bind(7, new_version)
                              .run());
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return new_version;
}

namespace {
Document read_document(const Statement& row) {
  return Document{row.text(0), row.text(1), row.text(2), row.text(3),
                  row.int64(4), row.int64(5), row.int64(6)};
}
}  // namespace

Result<std::optional<Document>> SqliteStore::get_document(const std::string& kind,
                                                          const std::string& id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT id,kind,status,body,created_at,updated_at,version FROM documents "
                  "WHERE kind=?1 AND id=?2");
  query.bind(1, kind).bind(2, id);
  std::optional<Document> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_document(row); }));
  return found;
}

Result<std::vector<Document>> SqliteStore::list_documents(const std::string& kind) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT id,kind,status,body,created_at,updated_at,version FROM documents "
                  "WHERE kind=?1 ORDER BY created_at, id");
  query.bind(1, kind);
  std::vector<Document> documents;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { documents.push_back(read_document(row)); }));
  return documents;
}

Status SqliteStore::add_campaign_members(const std::vector<CampaignMember>& members) {
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  Statement insert(db,
                   "INSERT INTO campaign_members(campaign_id,user_id,holdout,targeted_at) "
                   "VALUES(?1,?2,?3,?4)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (const auto& member : members) {
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, member.campaign_id)
                                .bind(2, member.user_id)
                                .bind(3, static_cast<std::int64_t>(member.holdout ? 1 : 0))
                                .bind(4, member.targeted_at)
                                .run());
  }
  return transaction.commit();
}

Result<std::vector<Store::CampaignMember>> SqliteStore::campaign_members(
    const std::string& campaign_id) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT campaign_id,user_id,holdout,targeted_at FROM campaign_members "
                  "WHERE campaign_id=?1 ORDER BY user_id");
  query.bind(1, campaign_id);
  std::vector<CampaignMember> members;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    members.push_back(CampaignMember{row.text(0), row.text(1), row.int64(2) != 0, row.int64(3)});
  }));
  return members;
}

Result<std::vector<std::pair<std::string, UnixSeconds>>> SqliteStore::last_targeted() {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT user_id, MAX(targeted_at) FROM campaign_members GROUP BY user_id");
  std::vector<std::pair<std::string, UnixSeconds>> rows;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { rows.emplace_back(row.text(0), row.int64(1)); }));
  return rows;
}

Status SqliteStore::put_api_key(const ApiKeyRecord& key) {
  std::lock_guard lock(write_mutex_);
  Statement insert(writer_,
                   "INSERT INTO api_keys(key_id,key_hash,role,label,created_at,revoked_at) "
                   "VALUES(?1,?2,?3,?4,?5,?6)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  insert.bind(1, key.key_id).bind(2, key.key_hash).bind(3, key.role).bind(4, key.label);
  insert.bind(5, key.created_at);
  if (key.revoked_at) {
    insert.bind(6, *key.revoked_at);
  } else {
    insert.bind_null(6);
  }
  return insert.run();
}

namespace {
ApiKeyRecord read_api_key(const Statement& row) {
  ApiKeyRecord key{row.text(0), row.text(1), row.text(2), row.text(3), row.int64(4), std::nullopt};
  if (!row.is_null(5)) key.revoked_at = row.int64(5);
  return key;
}
constexpr char kApiKeyColumns[] = "SELECT key_id,key_hash,role,label,created_at,revoked_at FROM api_keys";
}  // namespace

Result<std::optional<ApiKeyRecord>> SqliteStore::find_api_key_by_hash(const std::string& key_hash) {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kApiKeyColumns) + " WHERE key_hash=?1";
  Statement query(reader.db(), sql.c_str());
  query.bind(1, key_hash);
  std::optional<ApiKeyRecord> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_api_key(row); }));
  return found;
}

Result<std::vector<ApiKeyRecord>> SqliteStore::list_api_keys() {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kApiKeyColumns) + " ORDER BY created_at, key_id";
  Statement query(reader.db(), sql.c_str());
  std::vector<ApiKeyRecord> keys;
  FULCRUM_RETURN_IF_ERROR(
      query.each_row([&](const Statement& row) { keys.push_back(read_api_key(row)); }));
  return keys;
}

Status SqliteStore::revoke_api_key(const std::string& key_id, UnixSeconds at) {
  std::lock_guard lock(write_mutex_);
  Statement update(writer_, "UPDATE api_keys SET revoked_at=?2 WHERE key_id=?1 AND revoked_at IS NULL");
  FULCRUM_RETURN_IF_ERROR(update.status());
  FULCRUM_RETURN_IF_ERROR(update.bind(1, key_id).bind(2, at).run());
  if (sqlite3_changes(writer_) == 0) return not_found("no active API key " + key_id);
  return Status::ok();
}

Result<AuditEntry> SqliteStore::append_audit(
    AuditEntry entry, const std::function<std::string(const AuditEntry&)>& compute_hash) {
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  entry.sequence = 1;
  entry.previous_hash.clear();
  {
    Statement last(db, "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1");
    FULCRUM_RETURN_IF_ERROR(last.each_row([&](const Statement& row) {
      entry.sequence = row.int64(0) + 1;
      entry.previous_hash = row.text(1);
    }));
  }
  entry.hash = compute_hash(entry);
  Statement insert(db,
                   "INSERT INTO audit_log(sequence,at,actor,action,target,outcome,previous_hash,"
                   "hash) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
  FULCRUM_RETURN_IF_ERROR(insert.bind(1, entry.sequence)
                              .bind(2, entry.at)
                              .bind(3, entry.actor)
                              .bind(4, entry.action)
                              .bind(5, entry.target)
                              .bind(6, entry.outcome)
                              .bind(7, entry.previous_hash)
                              .bind(8, entry.hash)
                              .run());
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return entry;
}

Status SqliteStore::scan_audit(const std::function<void(const AuditEntry&)>& visit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT sequence,at,actor,action,target,outcome,previous_hash,hash FROM "
                  "audit_log ORDER BY sequence");
  return query.each_row([&](const Statement& row) {
    visit(AuditEntry{row.int64(0), row.int64(1), row.text(2), row.text(3), row.text(4),
                     row.text(5), row.text(6), row.text(7)});
  });
}

// Group commit (the HTTP server's assign route): exposures and their audit entries in one
// transaction, so one fsync covers many calls. Placed apart from ingest() on purpose; the
// INSERT below must follow the exposures table of the current schema, like ingest()'s.
Result<std::vector<AuditEntry>> SqliteStore::append_exposures_and_audit(
    const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
    const std::function<std::string(const AuditEntry&)>& compute_hash) {
  if (exposures.empty() && entries.empty()) return entries;
  std::lock_guard lock(write_mutex_);
  sqlite3* db = writer_;
  Transaction transaction(db);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  if (!exposures.empty()) {
    Statement insert(db,
                     "INSERT INTO exposures(experiment_id,user_id,variant,at) VALUES(?1,?2,?3,?4)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (const auto& event : exposures) {
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, event.experiment_id)
                                  .bind(2, event.user_id)
                                  .bind(3, event.variant)
                                  .bind(4, event.at)
                                  .run());
    }
  }
  if (!entries.empty()) {
    std::int64_t sequence = 0;
    std::string previous_hash;
    {
      Statement last(db, "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1");
      FULCRUM_RETURN_IF_ERROR(last.each_row([&](const Statement& row) {
        sequence = row.int64(0);
        previous_hash = row.text(1);
      }));
    }
    Statement insert(db,
                     "INSERT INTO audit_log(sequence,at,actor,action,target,outcome,"
                     "previous_hash,hash) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    FULCRUM_RETURN_IF_ERROR(insert.status());
    for (AuditEntry& entry : entries) {
      entry.sequence = ++sequence;
      entry.previous_hash = previous_hash;
      entry.hash = compute_hash(entry);
      previous_hash = entry.hash;
      FULCRUM_RETURN_IF_ERROR(insert.bind(1, entry.sequence)
                                  .bind(2, entry.at)
                                  .bind(3, entry.actor)
                                  .bind(4, entry.action)
                                  .bind(5, entry.target)
                                  .bind(6, entry.outcome)
                                  .bind(7, entry.previous_hash)
                                  .bind(8, entry.hash)
                                  .run());
    }
  }
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return entries;
}

}  // namespace fulcrum
