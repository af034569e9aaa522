#include "store/postgres/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "store/event_identity.h"
#include "store/postgres/postgres_schema.h"

namespace fulcrum {

struct PostgresStore::Connection {
  PGconn* conn = nullptr;
  ~Connection() { PQfinish(conn); }
};

namespace {

// Pooled connections kept beyond this many are closed when returned.
constexpr std::size_t kMaxIdleConnections = 16;
// Rows fetched per cursor round trip: large enough to amortise latency, small enough that a
// scan of any size holds a bounded number of rows in memory.
constexpr int kFetchRows = 32768;
// Flush COPY data to the socket once this much is buffered.
constexpr std::size_t kCopyFlushBytes = 1 << 20;
// First key of every advisory lock Fulcrum takes ("FULC"); the second key is a hash of the
// schema and purpose, so stores in different schemas of one database do not contend.
constexpr char kAdvisoryLockSql[] =
    "SELECT pg_advisory_xact_lock(1179995203, hashtext(COALESCE(current_schema(), '') || $1))";

// An idle connection has nothing to read: we never LISTEN, so readable means the server
// sent a termination notice or closed the socket (restart, failover, pg_terminate_backend).
// Such a connection is dropped instead of failing the caller's first statement.
bool idle_connection_alive(PGconn* conn) {
  if (PQstatus(conn) != CONNECTION_OK) return false;
  pollfd descriptor{PQsocket(conn), POLLIN, 0};
  return ::poll(&descriptor, 1, 0) == 0;
}

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

ResultPtr wrap(PGresult* result) { return ResultPtr(result, &PQclear); }

std::string trimmed(const char* text) {
  std::string message = text ? text : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

// Maps a failed command to a Status: a lost connection is kUnavailable (the caller may
// retry), a unique violation kAlreadyExists, anything else kInternal.
Status pg_error(PGconn* conn, const PGresult* result, std::string_view what) {
  std::string message = trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (message.empty()) message = trimmed(PQerrorMessage(conn));
  const std::string text = "postgres: " + std::string(what) + ": " + message;
  if (PQstatus(conn) != CONNECTION_OK) return Status(StatusCode::kUnavailable, text);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state ? state : "";
  if (sqlstate == "23505") return Status(StatusCode::kAlreadyExists, text);
  // 53100 disk_full, 53400 configuration_limit_exceeded (e.g. temp_file_limit).
  if (sqlstate == "53100" || sqlstate == "53400") {
    return Status(StatusCode::kResourceExhausted,
                  "the store's disk is full; nothing was stored (" + text + ")");
  }
  // Class 08 (connection exception), 57P01-57P03 (shutting down, crash recovery, starting):
  // the server is going away or not back yet, so the caller may retry.
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03") {
    return Status(StatusCode::kUnavailable, text);
  }
  return internal_error(text);
}

// Text-format query parameters (libpq sends them as untyped literals; SQL casts type them).
class Params {
 public:
  Params& add(std::string_view value) {
    values_.emplace_back(value);
    nulls_.push_back(false);
    return *this;
  }
  Params& add(std::int64_t value) { return add(std::to_string(value)); }
  Params& add_null() {
    values_.emplace_back();
    nulls_.push_back(true);
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> pointers;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      pointers.push_back(nulls_[i] ? nullptr : values_[i].c_str());
    }
    return pointers;
  }

 private:
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

// Runs one statement; `expected` is PGRES_TUPLES_OK or PGRES_COMMAND_OK.
Result<ResultPtr> run(PGconn* conn, const std::string& sql, const Params& params = {},
                      ExecStatusType expected = PGRES_TUPLES_OK) {
  const auto pointers = params.pointers();
  ResultPtr result =
      wrap(PQexecParams(conn, sql.c_str(), params.size(), nullptr,
                        pointers.empty() ? nullptr : pointers.data(), nullptr, nullptr, 0));
  if (!result || PQresultStatus(result.get()) != expected) {
    return pg_error(conn, result.get(), "query failed");
  }
  return result;
}

Status command(PGconn* conn, const std::string& sql, const Params& params = {}) {
  auto result = run(conn, sql, params, PGRES_COMMAND_OK);
  return result.is_ok() ? Status::ok() : result.status();
}

// Runs a script of several statements (simple query protocol), e.g. a migration.
Status script(PGconn* conn, std::string_view sql) {
  ResultPtr result = wrap(PQexec(conn, std::string(sql).c_str()));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return pg_error(conn, result.get(), "script failed");
  }
  return Status::ok();
}

// BEGIN on construction, ROLLBACK on destruction unless committed (also when an error
// return or an exception from a callback leaves the scope).
class Transaction {
 public:
  Transaction(PGconn* conn, const char* begin = "BEGIN") : conn_(conn) {
    status_ = command(conn, begin);
  }
  ~Transaction() {
    if (status_.is_ok() && !committed_) PQclear(PQexec(conn_, "ROLLBACK"));
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const Status& status() const { return status_; }
  Status commit() {
    FULCRUM_RETURN_IF_ERROR(command(conn_, "COMMIT"));
    committed_ = true;
    return Status::ok();
  }

 private:
  PGconn* conn_;
  Status status_;
  bool committed_ = false;
};

// A row of a text-format result.
class Row {
 public:
  Row(const PGresult* result, int row) : result_(result), row_(row) {}
  bool is_null(int column) const { return PQgetisnull(result_, row_, column) != 0; }
  std::string text(int column) const {
    return std::string(PQgetvalue(result_, row_, column),
                       static_cast<std::size_t>(PQgetlength(result_, row_, column)));
  }
  std::int64_t int64(int column) const {
    const char* begin = PQgetvalue(result_, row_, column);
    std::int64_t value = 0;
    std::from_chars(begin, begin + PQgetlength(result_, row_, column), value);
    return value;
  }
  std::int32_t int32(int column) const { return static_cast<std::int32_t>(int64(column)); }
  double real(int column) const {
    const char* begin = PQgetvalue(result_, row_, column);
    double value = 0;
    std::from_chars(begin, begin + PQgetlength(result_, row_, column), value);
    return value;
  }
  bool boolean(int column) const { return PQgetvalue(result_, row_, column)[0] == 't'; }

 private:
  const PGresult* result_;
  int row_;
};

template <typename Fn>
void each_row(const ResultPtr& result, Fn&& fn) {
  const int rows = PQntuples(result.get());
  for (int i = 0; i < rows; ++i) fn(Row(result.get(), i));
}

// Streams the rows of `select` through a server-side cursor, kFetchRows at a time, in one
// read-only REPEATABLE READ transaction (so the scan sees one snapshot). The next batch is
// asked for before this one is visited, so the server produces it while the caller works
// (two processes on two cores instead of taking turns).
template <typename Fn>
Status stream(PGconn* conn, const std::string& select, const Params& params, Fn&& fn) {
  Transaction transaction(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  FULCRUM_RETURN_IF_ERROR(
      command(conn, "DECLARE fulcrum_scan NO SCROLL CURSOR FOR " + select, params));
  const std::string fetch = "FETCH " + std::to_string(kFetchRows) + " FROM fulcrum_scan";
  auto send_fetch = [&]() -> Status {
    if (PQsendQuery(conn, fetch.c_str()) != 1) return pg_error(conn, nullptr, "fetch failed");
    return Status::ok();
  };
  // The one result of the FETCH in flight (PQgetResult until null leaves the connection idle).
  auto receive_batch = [&]() -> Result<ResultPtr> {
    ResultPtr batch = wrap(nullptr);
    while (PGresult* raw = PQgetResult(conn)) {
      if (!batch) batch = wrap(raw);
      else PQclear(raw);
    }
    if (!batch || PQresultStatus(batch.get()) != PGRES_TUPLES_OK) {
      return pg_error(conn, batch.get(), "query failed");
    }
    return batch;
  };
  FULCRUM_RETURN_IF_ERROR(send_fetch());
  for (;;) {
    auto batch = receive_batch();
    if (!batch.is_ok()) return batch.status();
    const bool more = PQntuples(batch->get()) == kFetchRows;
    if (more) FULCRUM_RETURN_IF_ERROR(send_fetch());
    each_row(*batch, fn);
    if (!more) break;
  }
  FULCRUM_RETURN_IF_ERROR(command(conn, "CLOSE fulcrum_scan"));
  return transaction.commit();
}

// One row of COPY ... TO STDOUT in text format, read field by field: the fields are
// tab-separated and, for the integer columns read this way, need no unescaping.
class CopyRow {
 public:
  CopyRow(const char* begin, const char* end) : at_(begin), end_(end) {}
  std::int64_t int64() {
    std::int64_t value = 0;
    if (at_ >= end_) return value;  // a field past the row's end reads as 0
    at_ = std::from_chars(at_, end_, value).ptr + 1;  // past the tab (or the newline)
    return value;
  }
  std::int32_t int32() { return static_cast<std::int32_t>(int64()); }

 private:
  const char* at_;
  const char* end_;
};

// Streams the rows of `select` with COPY (select) TO STDOUT: one statement, so one snapshot,
// and the server sends rows as its executor makes them. A cursor's FETCH first copies each
// batch into a tuplestore (spilling past work_mem) and then prints it, which was about a
// fifth of the server's work for a large rollup scan. COPY takes no parameters: `select`
// carries its values inline.
template <typename Fn>
Status copy_out(PGconn* conn, const std::string& select, Fn&& fn) {
  ResultPtr started = wrap(PQexec(conn, ("COPY (" + select + ") TO STDOUT").c_str()));
  if (!started || PQresultStatus(started.get()) != PGRES_COPY_OUT) {
    return pg_error(conn, started.get(), "query failed");
  }
  Status status = Status::ok();
  for (;;) {
    char* raw = nullptr;
    const int length = PQgetCopyData(conn, &raw, 0);
    if (length < 0) {  // -1: done, -2: failed; the command's result follows either way
      if (length != -1) status = pg_error(conn, nullptr, "query failed");
      break;
    }
    std::unique_ptr<char, decltype(&PQfreemem)> line(raw, &PQfreemem);
    fn(CopyRow(raw, raw + length));
  }
  while (PGresult* raw = PQgetResult(conn)) {
    ResultPtr result = wrap(raw);
    if (status.is_ok() && PQresultStatus(raw) != PGRES_COMMAND_OK) {
      status = pg_error(conn, raw, "query failed");
    }
  }
  return status;
}

// Writes rows in COPY BINARY format (PostgreSQL docs, "COPY", section "Binary Format"):
// a signature header, then per tuple an int16 field count and per field an int32 length
// followed by the value in the type's network (big-endian) binary representation.
class CopyWriter {
 public:
  explicit CopyWriter(PGconn* conn) : conn_(conn) {
    buffer_.append("PGCOPY\n\377\r\n\0", 11);
    put32(0);  // flags
    put32(0);  // header extension length
  }
  void row(std::int16_t fields) { put16(static_cast<std::uint16_t>(fields)); }
  void text(std::string_view value) {
    put32(static_cast<std::uint32_t>(value.size()));
    buffer_.append(value);
  }
  void int64(std::int64_t value) {
    put32(8);
    put64(static_cast<std::uint64_t>(value));
  }
  void int32(std::int32_t value) {
    put32(4);
    put32(static_cast<std::uint32_t>(value));
  }
  void real(double value) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    put32(8);
    put64(bits);
  }
  void boolean(bool value) {
    put32(1);
    buffer_.push_back(value ? 1 : 0);
  }
  void null() { put32(0xFFFFFFFFu); }
  // Sends buffered data when enough has accumulated.
  Status maybe_flush() { return buffer_.size() >= kCopyFlushBytes ? flush() : Status::ok(); }
  // Sends the trailer, ends the COPY and returns the server's verdict.
  Status finish() {
    put16(0xFFFFu);
    FULCRUM_RETURN_IF_ERROR(flush());
    if (PQputCopyEnd(conn_, nullptr) != 1) return pg_error(conn_, nullptr, "copy end failed");
    Status status = Status::ok();
    while (PGresult* raw = PQgetResult(conn_)) {
      ResultPtr result = wrap(raw);
      if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.is_ok()) {
        status = pg_error(conn_, raw, "copy failed");
      }
    }
    return status;
  }

 private:
  Status flush() {
    if (!buffer_.empty() &&
        PQputCopyData(conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
      return pg_error(conn_, nullptr, "copy data failed");
    }
    buffer_.clear();
    return Status::ok();
  }
  void put16(std::uint16_t v) {
    const char bytes[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    buffer_.append(bytes, 2);
  }
  void put32(std::uint32_t v) {
    put16(static_cast<std::uint16_t>(v >> 16));
    put16(static_cast<std::uint16_t>(v));
  }
  void put64(std::uint64_t v) {
    put32(static_cast<std::uint32_t>(v >> 32));
    put32(static_cast<std::uint32_t>(v));
  }

  PGconn* conn_;
  std::string buffer_;
};

// COPY `rows` into `table_and_columns` with `write(writer, row)` filling each tuple. When
// the server rejects the data mid-stream, the COPY is cancelled and the error returned.
template <typename Rows, typename Write>
Status copy_rows(PGconn* conn, const std::string& table_and_columns, const Rows& rows,
                 Write&& write) {
  if (rows.empty()) return Status::ok();
  ResultPtr start =
      wrap(PQexec(conn, ("COPY " + table_and_columns + " FROM STDIN (FORMAT binary)").c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    return pg_error(conn, start.get(), "copy start failed");
  }
  CopyWriter writer(conn);
  for (const auto& row : rows) {
    write(writer, row);
    Status flushed = writer.maybe_flush();
    if (!flushed.is_ok()) {
      // Drain the server's error so the connection is usable for the ROLLBACK.
      PQputCopyEnd(conn, "client error");
      while (PGresult* raw = PQgetResult(conn)) PQclear(raw);
      return flushed;
    }
  }
  return writer.finish();
}

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

constexpr char kUserColumns[] = "user_id,tier,signup_at,country,app_version,attributes";

User read_user(const Row& row) {
  User user;
  user.user_id = row.text(0);
  user.tier = static_cast<Tier>(row.int64(1));
  user.signup_at = row.int64(2);
  user.country = row.text(3);
  user.app_version = row.text(4);
  user.attributes = attributes_from_json(row.text(5));
  return user;
}

// WHERE clause for a time range (the bounds are integers, so inlining them is safe);
// unbounded sides are omitted so a full scan stays a sequential scan.
std::string range_clause(TimeRange range) {
  std::string clause;
  if (range.from != 0 && range.from != INT64_MIN) {
    clause += " AND at >= " + std::to_string(range.from);
  }
  if (range.to != INT64_MAX) clause += " AND at < " + std::to_string(range.to);
  return clause.empty() ? std::string() : " WHERE TRUE" + clause;
}

// Keeps the last occurrence of each key, in first-seen order: a batch may carry the same
// user twice, and INSERT ... ON CONFLICT DO UPDATE refuses to touch one row twice. The last
// one wins, as with row-by-row upserts.
template <typename T, typename Key>
std::vector<const T*> last_per_key(const std::vector<T>& items, Key key) {
  std::unordered_map<std::string, std::size_t> slot;
  std::vector<const T*> unique;
  for (const T& item : items) {
    auto [it, inserted] = slot.try_emplace(key(item), unique.size());
    if (inserted) {
      unique.push_back(&item);
    } else {
      unique[it->second] = &item;
    }
  }
  return unique;
}

// First exposure per user (ties on time broken by variant name, so results are stable).
constexpr char kFirstExposureCte[] = R"sql(
WITH first_exposure AS (
  SELECT DISTINCT ON (user_id) user_id, variant, at FROM exposures
  WHERE experiment_id = $1 ORDER BY user_id, at, variant
))sql";

// Staging tables for the upserts of ingest(): COPY cannot upsert, so users and features are
// copied here and merged with INSERT ... ON CONFLICT. Session-local and emptied on commit.
constexpr char kStagingTables[] = R"sql(
SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_users(user_id TEXT, tier INTEGER,
  signup_at BIGINT, country TEXT, app_version TEXT, attributes TEXT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_features(name TEXT, required_tier INTEGER,
  monthly_cost_minor BIGINT, monthly_value_minor BIGINT, category TEXT) ON COMMIT DELETE ROWS;
)sql";

// Staging tables for one batch's events of the kinds the usage rollups aggregate: the batch
// is COPYed here, appended to the event tables and folded into the rollups by SQL
// (postgres::rollup_merge_sql), all in the ingest transaction.
constexpr char kStagingEventTables[] = R"sql(
SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_feature_usage(user_id TEXT, feature TEXT,
  at BIGINT, count INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_sessions(user_id TEXT, at BIGINT,
  duration_seconds INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_subscription_changes(user_id TEXT, at BIGINT,
  kind INTEGER, from_tier INTEGER, to_tier INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_payments(user_id TEXT, at BIGINT,
  succeeded BOOLEAN, amount_minor BIGINT) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_paywall_hits(user_id TEXT, feature TEXT,
  at BIGINT) ON COMMIT DELETE ROWS;
)sql";

// The batch's event ids (identity::first_occurrences), claimed in one statement: the ids
// inserted are the new ones. Sorted, so two batches claiming overlapping ids lock them in
// the same order and cannot deadlock.
constexpr char kStagingEventIds[] = R"sql(
SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE IF NOT EXISTS fulcrum_stage_event_ids(ordinal INTEGER, kind INTEGER,
  event_id TEXT) ON COMMIT DELETE ROWS;
)sql";

constexpr char kClaimStagedEventIds[] = R"sql(
WITH claimed AS (
  INSERT INTO event_ids(kind, event_id)
    SELECT kind, event_id FROM fulcrum_stage_event_ids ORDER BY kind, event_id
  ON CONFLICT DO NOTHING RETURNING kind, event_id)
SELECT s.ordinal FROM fulcrum_stage_event_ids s
  JOIN claimed c ON c.kind = s.kind AND c.event_id = s.event_id)sql";

constexpr char kAppendStagedEvents[] = R"sql(
INSERT INTO feature_usage(user_id,feature,at,count)
  SELECT user_id,feature,at,count FROM fulcrum_stage_feature_usage;
INSERT INTO sessions(user_id,at,duration_seconds)
  SELECT user_id,at,duration_seconds FROM fulcrum_stage_sessions;
INSERT INTO subscription_changes(user_id,at,kind,from_tier,to_tier)
  SELECT user_id,at,kind,from_tier,to_tier FROM fulcrum_stage_subscription_changes;
INSERT INTO payments(user_id,at,succeeded,amount_minor)
  SELECT user_id,at,succeeded,amount_minor FROM fulcrum_stage_payments;
INSERT INTO paywall_hits(user_id,feature,at) SELECT user_id,feature,at FROM fulcrum_stage_paywall_hits;
)sql";

const std::string& staged_events_merge() {
  static const std::string sql =
      std::string(kAppendStagedEvents) + postgres::rollup_merge_sql("fulcrum_stage_");
  return sql;
}

constexpr char kMergeUsers[] =
    "INSERT INTO users(user_id,tier,signup_at,country,app_version,attributes) "
    "SELECT user_id,tier,signup_at,country,app_version,attributes FROM fulcrum_stage_users "
    "ON CONFLICT(user_id) DO UPDATE SET tier=excluded.tier, signup_at=excluded.signup_at, "
    "country=excluded.country, app_version=excluded.app_version, "
    "attributes=excluded.attributes";

constexpr char kMergeFeatures[] =
    "INSERT INTO features(name,required_tier,monthly_cost_minor,monthly_value_minor,category) "
    "SELECT name,required_tier,monthly_cost_minor,monthly_value_minor,category "
    "FROM fulcrum_stage_features ON CONFLICT(name) DO UPDATE SET "
    "required_tier=excluded.required_tier, monthly_cost_minor=excluded.monthly_cost_minor, "
    "monthly_value_minor=excluded.monthly_value_minor, category=excluded.category";

}  // namespace

// A pooled connection for the duration of one Store call. A connection that is broken or
// left mid-transaction is not returned to the pool.
class PostgresStore::Lease {
 public:
  explicit Lease(PostgresStore& store) : store_(store), connection_(store.acquire()) {}
  ~Lease() {
    if (!connection_.is_ok()) return;
    auto& connection = *connection_;
    if (PQstatus(connection->conn) == CONNECTION_OK &&
        PQtransactionStatus(connection->conn) == PQTRANS_IDLE) {
      store_.release(std::move(connection));
    }
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  const Status& status() const { return connection_.status(); }
  PGconn* conn() const { return (*connection_)->conn; }

 private:
  PostgresStore& store_;
  Result<std::unique_ptr<Connection>> connection_;
};

#define FULCRUM_WITH_LEASE(lease) \
  Lease lease(*this);             \
  if (!lease.status().is_ok()) return lease.status()

PostgresStore::PostgresStore(std::string url) : url_(std::move(url)) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore::Connection>> PostgresStore::connect() const {
  // Defaults first: values in the URL (expanded from dbname) override them.
  const char* keywords[] = {"application_name", "connect_timeout", "client_encoding", "dbname",
                            nullptr};
  const char* values[] = {"fulcrum", "10", "UTF8", url_.c_str(), nullptr};
  auto connection = std::make_unique<Connection>();
  connection->conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!connection->conn) return Status(StatusCode::kUnavailable, "postgres: out of memory");
  if (PQstatus(connection->conn) != CONNECTION_OK) {
    // The message names host and port but never the password.
    return Status(StatusCode::kUnavailable,
                  "cannot connect to PostgreSQL: " + trimmed(PQerrorMessage(connection->conn)),
                  "store");
  }
  // NOTICEs (e.g. "relation already exists, skipping") are not errors; keep stderr clean.
  PQsetNoticeProcessor(
      connection->conn, [](void*, const char*) {}, nullptr);
  return connection;
}

Result<std::unique_ptr<PostgresStore::Connection>> PostgresStore::acquire() {
  {
    std::lock_guard lock(pool_mutex_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (idle_connection_alive(connection->conn)) return connection;
    }
  }
  return connect();
}

void PostgresStore::release(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(connection));
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url) {
  std::unique_ptr<PostgresStore> store(new PostgresStore(url));
  Lease lease(*store);
  if (!lease.status().is_ok()) return lease.status();
  PGconn* conn = lease.conn();
  Transaction transaction(conn);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  // Replicas starting together queue here; the second one finds the work done.
  FULCRUM_RETURN_IF_ERROR(command(conn, "SET LOCAL client_min_messages = warning"));
  {
    auto locked = run(conn, kAdvisoryLockSql, Params().add(".migrate"));
    if (!locked.is_ok()) return locked.status();
  }
  FULCRUM_RETURN_IF_ERROR(
      command(conn, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)"));
  auto current = run(conn, "SELECT version FROM schema_version");
  if (!current.is_ok()) return current.status();
  std::int64_t version = 0;
  const bool has_row = PQntuples(current->get()) > 0;
  each_row(*current, [&](const Row& row) { version = row.int64(0); });
  const auto& scripts = postgres::migrations();
  if (version > static_cast<std::int64_t>(scripts.size())) {
    return failed_precondition("database schema version " + std::to_string(version) +
                               " is newer than this build supports (" +
                               std::to_string(scripts.size()) + ")");
  }
  for (auto i = static_cast<std::size_t>(version); i < scripts.size(); ++i) {
    FULCRUM_RETURN_IF_ERROR(script(conn, scripts[i]));
  }
  if (has_row) {
    FULCRUM_RETURN_IF_ERROR(command(conn, "UPDATE schema_version SET version = $1",
                                    Params().add(static_cast<std::int64_t>(scripts.size()))));
  } else {
    FULCRUM_RETURN_IF_ERROR(command(conn, "INSERT INTO schema_version(version) VALUES ($1)",
                                    Params().add(static_cast<std::int64_t>(scripts.size()))));
  }
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return store;
}

Result<int> PostgresStore::schema_version() {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), "SELECT version FROM schema_version");
  if (!result.is_ok()) return result.status();
  int version = 0;
  each_row(*result, [&](const Row& row) { version = row.int32(0); });
  return version;
}

namespace {

Status write_batch(PGconn* conn, const EventBatch& batch);

// Claims the ids in event_ids (see kClaimStagedEventIds); is_new[i] is false for an id
// stored before or repeated earlier in the list.
Result<std::vector<bool>> claim_event_ids(PGconn* conn,
                                          const std::vector<identity::EventId>& ids) {
  std::vector<bool> is_new;
  const std::vector<std::size_t> first = identity::first_occurrences(ids, is_new);
  if (first.empty()) return is_new;
  FULCRUM_RETURN_IF_ERROR(script(conn, kStagingEventIds));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_event_ids(ordinal,kind,event_id)", first,
                                    [&](CopyWriter& w, std::size_t i) {
                                      w.row(3);
                                      w.int32(static_cast<std::int32_t>(i));
                                      w.int32(static_cast<std::int32_t>(ids[i].kind));
                                      w.text(ids[i].id);
                                    }));
  auto claimed = run(conn, kClaimStagedEventIds);
  if (!claimed.is_ok()) return claimed.status();
  for (std::size_t i : first) is_new[i] = false;
  each_row(*claimed, [&](const Row& row) { is_new[static_cast<std::size_t>(row.int64(0))] = true; });
  return is_new;
}

Result<std::optional<IdempotentResponse>> read_idempotent_response(PGconn* conn,
                                                                   const std::string& key,
                                                                   UnixSeconds now) {
  auto found = run(conn,
                   "SELECT fingerprint, status, body, created_at, expires_at FROM "
                   "idempotency_keys WHERE key = $1 AND expires_at > $2",
                   Params().add(key).add(now));
  if (!found.is_ok()) return found.status();
  std::optional<IdempotentResponse> response;
  each_row(*found, [&](const Row& row) {
    response = IdempotentResponse{row.text(0), row.int32(1), row.text(2), row.int64(3),
                                  row.int64(4)};
  });
  return response;
}

// Remembers the response and forgets expired ones (so the table holds one lifetime's keys).
Status write_idempotent_response(PGconn* conn, const IdempotentRequest& request,
                                 const IngestReport& report) {
  FULCRUM_RETURN_IF_ERROR(command(conn, "DELETE FROM idempotency_keys WHERE expires_at <= $1",
                                  Params().add(request.now)));
  const auto [status, body] = request.respond(report);
  return command(conn,
                 "INSERT INTO idempotency_keys(key, fingerprint, status, body, created_at, "
                 "expires_at) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(key) DO UPDATE SET "
                 "fingerprint = excluded.fingerprint, status = excluded.status, "
                 "body = excluded.body, created_at = excluded.created_at, "
                 "expires_at = excluded.expires_at",
                 Params()
                     .add(request.key)
                     .add(request.fingerprint)
                     .add(static_cast<std::int64_t>(status))
                     .add(body)
                     .add(request.now)
                     .add(request.expires_at));
}

}  // namespace

Result<std::optional<IdempotentResponse>> PostgresStore::find_idempotent_response(
    const std::string& key, UnixSeconds now) {
  FULCRUM_WITH_LEASE(lease);
  return read_idempotent_response(lease.conn(), key, now);
}

Result<IngestReport> PostgresStore::ingest(const EventBatch& input, const IngestOptions& options) {
  IngestReport report;
  if (input.size() == 0 && options.idempotency == nullptr) return report;
  FULCRUM_WITH_LEASE(lease);
  PGconn* conn = lease.conn();
  Transaction transaction(conn);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  if (options.idempotency != nullptr) {
    // Concurrent requests with one key queue here until the first commits; then the row
    // it wrote is visible to the next one's SELECT (READ COMMITTED, a new statement).
    {
      auto locked = run(conn, kAdvisoryLockSql, Params().add(".idempotency:" + options.idempotency->key));
      if (!locked.is_ok()) return locked.status();
    }
    auto earlier =
        read_idempotent_response(conn, options.idempotency->key, options.idempotency->now);
    if (!earlier.is_ok()) return earlier.status();
    if (*earlier) {  // nothing written: the transaction rolls back
      report.replayed = std::move(**earlier);
      return report;
    }
  }
  auto claimed = claim_event_ids(conn, identity::ids_of(input));
  if (!claimed.is_ok()) return claimed.status();
  const std::optional<EventBatch> kept =
      identity::without_duplicates(input, *claimed, report.duplicates);
  const EventBatch& batch = kept ? *kept : input;
  report.stored = static_cast<std::int64_t>(batch.size());
  FULCRUM_RETURN_IF_ERROR(write_batch(conn, batch));
  if (options.idempotency != nullptr) {
    FULCRUM_RETURN_IF_ERROR(write_idempotent_response(conn, *options.idempotency, report));
  }
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return report;
}

namespace {

// Inside the caller's transaction: upserts users and features, appends the events and
// folds them into the rollups.
Status write_batch(PGconn* conn, const EventBatch& batch) {
  if (batch.size() == 0) return Status::ok();
  // Every time, not once per connection: behind a transaction-pooling PgBouncer the server
  // session (and its temp tables) can change between transactions.
  if (!batch.users.empty() || !batch.features.empty()) {
    FULCRUM_RETURN_IF_ERROR(script(conn, kStagingTables));
  }
  if (!batch.users.empty()) {
    const auto users = last_per_key(batch.users, [](const User& u) { return u.user_id; });
    FULCRUM_RETURN_IF_ERROR(copy_rows(conn,
                                      std::string("fulcrum_stage_users(") + kUserColumns + ")",
                                      users, [](CopyWriter& w, const User* user) {
                                        w.row(6);
                                        w.text(user->user_id);
                                        w.int32(static_cast<std::int32_t>(user->tier));
                                        w.int64(user->signup_at);
                                        w.text(user->country);
                                        w.text(user->app_version);
                                        w.text(attributes_to_json(user->attributes));
                                      }));
    FULCRUM_RETURN_IF_ERROR(command(conn, kMergeUsers));
  }
  if (!batch.features.empty()) {
    const auto features = last_per_key(batch.features, [](const Feature& f) { return f.name; });
    FULCRUM_RETURN_IF_ERROR(copy_rows(
        conn,
        "fulcrum_stage_features(name,required_tier,monthly_cost_minor,monthly_value_minor,"
        "category)",
        features, [](CopyWriter& w, const Feature* feature) {
          w.row(5);
          w.text(feature->name);
          w.int32(static_cast<std::int32_t>(feature->required_tier));
          w.int64(feature->monthly_maintenance_cost_minor);
          w.int64(feature->monthly_revenue_value_minor);
          w.text(feature->category);
        }));
    FULCRUM_RETURN_IF_ERROR(command(conn, kMergeFeatures));
  }
  const bool has_rollup_events = !batch.feature_usage.empty() || !batch.sessions.empty() ||
                                 !batch.subscription_changes.empty() || !batch.payments.empty() ||
                                 !batch.paywall_hits.empty();
  if (has_rollup_events) FULCRUM_RETURN_IF_ERROR(script(conn, kStagingEventTables));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_feature_usage(user_id,feature,at,count)",
                                    batch.feature_usage,
                                    [](CopyWriter& w, const FeatureUsageEvent& e) {
                                      w.row(4);
                                      w.text(e.user_id);
                                      w.text(e.feature);
                                      w.int64(e.at);
                                      w.int32(e.count);
                                    }));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_sessions(user_id,at,duration_seconds)",
                                    batch.sessions,
                                    [](CopyWriter& w, const SessionEvent& e) {
                                      w.row(3);
                                      w.text(e.user_id);
                                      w.int64(e.at);
                                      w.int32(e.duration_seconds);
                                    }));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_subscription_changes(user_id,at,kind,from_tier,to_tier)",
                                    batch.subscription_changes,
                                    [](CopyWriter& w, const SubscriptionChangeEvent& e) {
                                      w.row(5);
                                      w.text(e.user_id);
                                      w.int64(e.at);
                                      w.int32(static_cast<std::int32_t>(e.kind));
                                      w.int32(static_cast<std::int32_t>(e.from_tier));
                                      w.int32(static_cast<std::int32_t>(e.to_tier));
                                    }));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_payments(user_id,at,succeeded,amount_minor)",
                                    batch.payments, [](CopyWriter& w, const PaymentEvent& e) {
                                      w.row(4);
                                      w.text(e.user_id);
                                      w.int64(e.at);
                                      w.boolean(e.succeeded);
                                      w.int64(e.amount_minor);
                                    }));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "fulcrum_stage_paywall_hits(user_id,feature,at)",
                                    batch.paywall_hits,
                                    [](CopyWriter& w, const PaywallHitEvent& e) {
                                      w.row(3);
                                      w.text(e.user_id);
                                      w.text(e.feature);
                                      w.int64(e.at);
                                    }));
  // The staged events join the event tables and the rollups in this transaction.
  if (has_rollup_events) FULCRUM_RETURN_IF_ERROR(script(conn, staged_events_merge()));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "exposures(experiment_id,user_id,variant,at)",
                                    batch.exposures, [](CopyWriter& w, const ExposureEvent& e) {
                                      w.row(4);
                                      w.text(e.experiment_id);
                                      w.text(e.user_id);
                                      w.text(e.variant);
                                      w.int64(e.at);
                                    }));
  FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "metric_events(user_id,metric,value,at)",
                                    batch.metric_events, [](CopyWriter& w, const MetricEvent& e) {
                                      w.row(4);
                                      w.text(e.user_id);
                                      w.text(e.metric);
                                      w.real(e.value);
                                      w.int64(e.at);
                                    }));
  return Status::ok();
}

}  // namespace

Status PostgresStore::ingest_row_by_row(const EventBatch& batch) {
  if (!batch.features.empty() || !batch.subscription_changes.empty() || !batch.payments.empty() ||
      !batch.paywall_hits.empty()) {
    return invalid_argument(
        "ingest_row_by_row covers users, usage, sessions, exposures and "
        "metric events only (it exists for benchmarks)");
  }
  FULCRUM_WITH_LEASE(lease);
  PGconn* conn = lease.conn();
  Transaction transaction(conn);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  for (const User& user : batch.users) {
    FULCRUM_RETURN_IF_ERROR(command(
        conn,
        std::string("INSERT INTO users(") + kUserColumns +
            ") VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT(user_id) DO UPDATE SET tier=excluded.tier,"
            " signup_at=excluded.signup_at, country=excluded.country, "
            "app_version=excluded.app_version, attributes=excluded.attributes",
        Params()
            .add(user.user_id)
            .add(static_cast<std::int64_t>(user.tier))
            .add(user.signup_at)
            .add(user.country)
            .add(user.app_version)
            .add(attributes_to_json(user.attributes))));
  }
  // Usage and sessions go through the staging tables and the same merge as ingest(), so
  // the rollups stay consistent with the events.
  const bool has_rollup_events = !batch.feature_usage.empty() || !batch.sessions.empty();
  if (has_rollup_events) FULCRUM_RETURN_IF_ERROR(script(conn, kStagingEventTables));
  for (const auto& e : batch.feature_usage) {
    FULCRUM_RETURN_IF_ERROR(
        command(conn,
                "INSERT INTO fulcrum_stage_feature_usage(user_id,feature,at,count) "
                "VALUES($1,$2,$3,$4)",
                Params().add(e.user_id).add(e.feature).add(e.at).add(std::int64_t{e.count})));
  }
  for (const auto& e : batch.sessions) {
    FULCRUM_RETURN_IF_ERROR(
        command(conn,
                "INSERT INTO fulcrum_stage_sessions(user_id,at,duration_seconds) "
                "VALUES($1,$2,$3)",
                Params().add(e.user_id).add(e.at).add(std::int64_t{e.duration_seconds})));
  }
  if (has_rollup_events) FULCRUM_RETURN_IF_ERROR(script(conn, staged_events_merge()));
  for (const auto& e : batch.exposures) {
    FULCRUM_RETURN_IF_ERROR(
        command(conn, "INSERT INTO exposures(experiment_id,user_id,variant,at) VALUES($1,$2,$3,$4)",
                Params().add(e.experiment_id).add(e.user_id).add(e.variant).add(e.at)));
  }
  for (const auto& e : batch.metric_events) {
    char value[32];
    auto end = std::to_chars(value, value + sizeof value, e.value).ptr;
    FULCRUM_RETURN_IF_ERROR(command(
        conn, "INSERT INTO metric_events(user_id,metric,value,at) VALUES($1,$2,$3,$4)",
        Params().add(e.user_id).add(e.metric).add(std::string_view(value, end - value)).add(e.at)));
  }
  return transaction.commit();
}

Result<std::optional<User>> PostgresStore::get_user(const std::string& user_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), std::string("SELECT ") + kUserColumns + " FROM users WHERE user_id = $1",
          Params().add(user_id));
  if (!result.is_ok()) return result.status();
  std::optional<User> found;
  each_row(*result, [&](const Row& row) { found = read_user(row); });
  return found;
}

Status PostgresStore::scan_users(const std::function<void(const User&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(), std::string("SELECT ") + kUserColumns + " FROM users", {},
                [&](const Row& row) { visit(read_user(row)); });
}

Result<std::int64_t> PostgresStore::count_users() {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), "SELECT COUNT(*) FROM users");
  if (!result.is_ok()) return result.status();
  std::int64_t count = 0;
  each_row(*result, [&](const Row& row) { count = row.int64(0); });
  return count;
}

Result<std::vector<Feature>> PostgresStore::list_features() {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT name,required_tier,monthly_cost_minor,monthly_value_minor,category "
                    "FROM features ORDER BY name");
  if (!result.is_ok()) return result.status();
  std::vector<Feature> features;
  each_row(*result, [&](const Row& row) {
    features.push_back(Feature{row.text(0), static_cast<Tier>(row.int64(1)), row.int64(2),
                               row.int64(3), row.text(4)});
  });
  return features;
}

Status PostgresStore::scan_feature_usage(
    TimeRange range, const std::function<void(const FeatureUsageEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT user_id,feature,at,count FROM feature_usage" + range_clause(range), {},
                [&](const Row& row) {
                  visit(FeatureUsageEvent{row.text(0), row.text(1), row.int64(2), row.int32(3)});
                });
}

Status PostgresStore::scan_sessions(TimeRange range,
                                    const std::function<void(const SessionEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT user_id,at,duration_seconds FROM sessions" + range_clause(range), {},
                [&](const Row& row) {
                  visit(SessionEvent{row.text(0), row.int64(1), row.int32(2)});
                });
}

Status PostgresStore::scan_subscription_changes(
    TimeRange range, const std::function<void(const SubscriptionChangeEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(
      lease.conn(),
      "SELECT user_id,at,kind,from_tier,to_tier FROM subscription_changes" + range_clause(range),
      {}, [&](const Row& row) {
        visit(SubscriptionChangeEvent{
            row.text(0), row.int64(1), static_cast<SubscriptionChangeKind>(row.int64(2)),
            static_cast<Tier>(row.int64(3)), static_cast<Tier>(row.int64(4))});
      });
}

Status PostgresStore::scan_payments(TimeRange range,
                                    const std::function<void(const PaymentEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT user_id,at,succeeded,amount_minor FROM payments" + range_clause(range), {},
                [&](const Row& row) {
                  visit(PaymentEvent{row.text(0), row.int64(1), row.boolean(2), row.int64(3)});
                });
}

Status PostgresStore::scan_paywall_hits(TimeRange range,
                                        const std::function<void(const PaywallHitEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(), "SELECT user_id,feature,at FROM paywall_hits" + range_clause(range),
                {}, [&](const Row& row) {
                  visit(PaywallHitEvent{row.text(0), row.text(1), row.int64(2)});
                });
}

Status PostgresStore::scan_metric_events(TimeRange range,
                                         const std::function<void(const MetricEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT user_id,metric,value,at FROM metric_events" + range_clause(range), {},
                [&](const Row& row) {
                  visit(MetricEvent{row.text(0), row.text(1), row.real(2), row.int64(3)});
                });
}

Status PostgresStore::scan_exposures(const std::string& experiment_id,
                                     const std::function<void(const ExposureEvent&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT experiment_id,user_id,variant,at FROM exposures WHERE experiment_id = $1",
                Params().add(experiment_id), [&](const Row& row) {
                  visit(ExposureEvent{row.text(0), row.text(1), row.text(2), row.int64(3)});
                });
}

namespace {

// MAX or MIN of `at` over every event table (0 when they are all empty).
Result<UnixSeconds> event_time_bound(PGconn* conn, const std::string& aggregate) {
  std::string sql = aggregate == "MAX" ? "SELECT GREATEST(" : "SELECT LEAST(";
  const char* separator = "";
  for (const char* table : {"feature_usage", "sessions", "subscription_changes", "payments",
                            "paywall_hits", "exposures", "metric_events"}) {
    sql += separator + std::string("(SELECT ") + aggregate + "(at) FROM " + table + ")";
    separator = ", ";
  }
  auto result = run(conn, sql + ")");
  if (!result.is_ok()) return result.status();
  UnixSeconds bound = 0;
  each_row(*result, [&](const Row& row) {
    if (!row.is_null(0)) bound = row.int64(0);
  });
  return bound;
}

}  // namespace

Result<UnixSeconds> PostgresStore::latest_event_time() {
  FULCRUM_WITH_LEASE(lease);
  auto latest = event_time_bound(lease.conn(), "MAX");
  if (!latest.is_ok()) return latest.status();
  return std::max<UnixSeconds>(0, *latest);
}

Result<UnixSeconds> PostgresStore::earliest_event_time() {
  FULCRUM_WITH_LEASE(lease);
  return event_time_bound(lease.conn(), "MIN");
}

Result<std::vector<std::pair<std::string, std::int64_t>>> PostgresStore::exposure_counts(
    const std::string& experiment_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    std::string(kFirstExposureCte) +
                        " SELECT variant, COUNT(*) FROM first_exposure GROUP BY variant "
                        "ORDER BY variant",
                    Params().add(experiment_id));
  if (!result.is_ok()) return result.status();
  std::vector<std::pair<std::string, std::int64_t>> counts;
  each_row(*result, [&](const Row& row) { counts.emplace_back(row.text(0), row.int64(1)); });
  return counts;
}

Result<std::int64_t> PostgresStore::count_multi_variant_users(const std::string& experiment_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT COUNT(*) FROM (SELECT user_id FROM exposures WHERE experiment_id = $1 "
                    "GROUP BY user_id HAVING COUNT(DISTINCT variant) > 1) multi",
                    Params().add(experiment_id));
  if (!result.is_ok()) return result.status();
  std::int64_t count = 0;
  each_row(*result, [&](const Row& row) { count = row.int64(0); });
  return count;
}

Result<std::optional<std::string>> PostgresStore::first_exposure_variant(
    const std::string& experiment_id, const std::string& user_id) {
  FULCRUM_WITH_LEASE(lease);
  // An index-only read of exposures_experiment_user (experiment_id, user_id, at, variant).
  auto result = run(lease.conn(),
                    "SELECT variant FROM exposures WHERE experiment_id = $1 AND user_id = $2 "
                    "ORDER BY at, variant LIMIT 1",
                    Params().add(experiment_id).add(user_id));
  if (!result.is_ok()) return result.status();
  std::optional<std::string> variant;
  each_row(*result, [&](const Row& row) { variant = row.text(0); });
  return variant;
}

Result<std::vector<VariantMetricStats>> PostgresStore::variant_metric_stats(
    const std::string& experiment_id, const std::string& metric, UnixSeconds pre_period_seconds) {
  FULCRUM_WITH_LEASE(lease);
  // A negative window is empty, and clamping keeps `at - window` inside BIGINT.
  const UnixSeconds window = std::clamp<UnixSeconds>(pre_period_seconds, 0, INT64_C(1) << 60);
  // One observation per exposed user: the sum of the metric at or after first exposure and
  // (for CUPED, Deng et al. 2013) the sum in the pre-period window before it. The join keeps
  // only each user's events from the window start on, and the server returns one row of
  // sufficient statistics per variant.
  const std::string sql = std::string(kFirstExposureCte) + R"sql(,
per_user AS (
  SELECT f.variant,
    COALESCE(SUM(m.value) FILTER (WHERE m.at >= f.at), 0) AS post,
    COALESCE(SUM(m.value) FILTER (WHERE m.at < f.at), 0) AS pre
  FROM first_exposure f
  LEFT JOIN metric_events m
    ON m.metric = $2 AND m.user_id = f.user_id AND m.at >= f.at - $3::bigint
  GROUP BY f.user_id, f.variant)
SELECT variant, COUNT(*), COUNT(*) FILTER (WHERE post > 0), SUM(post), SUM(post * post),
  SUM(pre), SUM(pre * pre), SUM(pre * post)
FROM per_user GROUP BY variant ORDER BY variant)sql";
  auto result = run(lease.conn(), sql, Params().add(experiment_id).add(metric).add(window));
  if (!result.is_ok()) return result.status();
  std::vector<VariantMetricStats> stats;
  each_row(*result, [&](const Row& row) {
    VariantMetricStats variant;
    variant.variant = row.text(0);
    variant.users = row.int64(1);
    variant.converted = row.int64(2);
    variant.sum = row.real(3);
    variant.sum_squares = row.real(4);
    variant.pre_sum = row.real(5);
    variant.pre_sum_squares = row.real(6);
    variant.cross_sum = row.real(7);
    stats.push_back(std::move(variant));
  });
  return stats;
}

namespace {

// Each exposed user's post-exposure sum of the metric (0 without events).
constexpr char kPostPerUserCte[] = R"sql(,
per_user AS (
  SELECT f.user_id, f.variant, COALESCE(SUM(m.value), 0) AS post
  FROM first_exposure f
  LEFT JOIN metric_events m ON m.metric = $2 AND m.user_id = f.user_id AND m.at >= f.at
  GROUP BY f.user_id, f.variant))sql";

// The elements of a float8[] in text form ("{1,2.5,-3e-05}"); false when one is not a number.
bool parse_float_array(std::string_view text, std::vector<double>& out) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  text = text.substr(1, text.size() - 2);
  while (!text.empty()) {
    const std::size_t comma = std::min(text.find(','), text.size());
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + comma, value);
    if (error != std::errc() || end != text.data() + comma) return false;
    out.push_back(value);
    text.remove_prefix(std::min(comma + 1, text.size()));
  }
  return true;
}

}  // namespace

Result<ExposedUserMetric> PostgresStore::exposed_user_metric(
    const std::string& experiment_id, const std::string& metric,
    std::span<const UnixSeconds> pre_window_edges) {
  FULCRUM_RETURN_IF_ERROR(check_pre_window_edges(pre_window_edges));
  FULCRUM_WITH_LEASE(lease);
  const std::size_t windows = pre_window_edges.empty() ? 0 : pre_window_edges.size() - 1;
  const UnixSeconds earliest = windows > 0 ? pre_window_edges.back() : 0;
  // One row per exposed user: the post-exposure sum and one sum per pre-exposure window,
  // aggregated by the server (the edges are checked integers, written into the SQL).
  std::string windows_sql;
  for (std::size_t w = 0; w < windows; ++w) {
    windows_sql += ", COALESCE(SUM(m.value) FILTER (WHERE m.at < f.at - " +
                   std::to_string(pre_window_edges[w]) + " AND m.at >= f.at - " +
                   std::to_string(pre_window_edges[w + 1]) + "), 0) AS pre" + std::to_string(w);
  }
  std::string pre_columns;
  for (std::size_t w = 0; w < windows; ++w) pre_columns += ", p.pre" + std::to_string(w);
  const std::string sql = std::string(kFirstExposureCte) + R"sql(,
per_user AS (
  SELECT f.user_id, f.variant, f.at,
    COALESCE(SUM(m.value) FILTER (WHERE m.at >= f.at), 0) AS post)sql" +
                          windows_sql + R"sql(
  FROM first_exposure f
  LEFT JOIN metric_events m
    ON m.metric = $2 AND m.user_id = f.user_id AND m.at >= f.at - )sql" +
                          std::to_string(earliest) + R"sql(
  GROUP BY f.user_id, f.variant, f.at)
SELECT p.user_id, p.variant, p.at, COALESCE(k.user_key, -1), p.post)sql" +
                          pre_columns + R"sql(
FROM per_user p LEFT JOIN user_keys k ON k.user_id = p.user_id)sql";
  ExposedUserMetric out;
  out.windows = windows;
  std::map<std::string, std::uint16_t, std::less<>> variant_ids;
  std::vector<std::uint16_t> raw_variant;
  FULCRUM_RETURN_IF_ERROR(
      stream(lease.conn(), sql, Params().add(experiment_id).add(metric), [&](const Row& row) {
        out.user_ids.push_back(row.text(0));
        const std::string variant = row.text(1);
        auto found = variant_ids.find(variant);
        if (found == variant_ids.end()) {
          found =
              variant_ids.emplace(variant, static_cast<std::uint16_t>(variant_ids.size())).first;
        }
        raw_variant.push_back(found->second);
        out.first_exposure_at.push_back(row.int64(2));
        const std::int64_t key = row.int64(3);
        out.user_keys.push_back(key < 0 ? kNoRollupKey : static_cast<std::uint32_t>(key));
        out.post.push_back(row.real(4));
        for (std::size_t w = 0; w < windows; ++w)
          out.pre.push_back(row.real(static_cast<int>(5 + w)));
      }));
  // Variants sorted by name, as the SQLite backend reports them.
  std::vector<std::uint16_t> sorted_index(variant_ids.size());
  for (const auto& [name, id] : variant_ids) {
    sorted_index[id] = static_cast<std::uint16_t>(out.variants.size());
    out.variants.push_back(name);
  }
  out.variant_index.reserve(raw_variant.size());
  for (std::uint16_t id : raw_variant) out.variant_index.push_back(sorted_index[id]);
  return out;
}

Status PostgresStore::scan_user_period_sums(
    const std::string& metric, const std::vector<UnixSeconds>& edges,
    const std::function<void(const User&, const double* sums)>& visit) {
  FULCRUM_RETURN_IF_ERROR(validate_period_edges(edges));
  FULCRUM_WITH_LEASE(lease);
  // Summed per (user, period) on the server, one row per stored user with its periods'
  // sums as two arrays; width_bucket numbers the periods 1..n by the edges.
  const std::string sql =
      "WITH e AS (SELECT user_id, width_bucket(at, $2::int8[]) AS p, SUM(value) AS total "
      "FROM metric_events WHERE metric = $1 AND at >= $3 AND at < $4 GROUP BY user_id, p), "
      "a AS (SELECT user_id, array_agg(p ORDER BY p) AS ps, array_agg(total ORDER BY p) AS "
      "totals FROM e GROUP BY user_id) "
      "SELECT u.user_id,u.tier,u.signup_at,u.country,u.app_version,u.attributes,"
      "a.ps::text,a.totals::text FROM users u LEFT JOIN a ON a.user_id = u.user_id";
  std::string edges_text = "{";
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (i) edges_text += ',';
    edges_text += std::to_string(edges[i]);
  }
  edges_text += '}';
  const std::size_t periods = edges.size() - 1;
  std::vector<double> sums(periods), period_numbers, totals;
  bool parsed = true;
  Status streamed = stream(
      lease.conn(), sql, Params().add(metric).add(edges_text).add(edges.front()).add(edges.back()),
      [&](const Row& row) {
        std::fill(sums.begin(), sums.end(), 0.0);
        if (!row.is_null(6)) {
          period_numbers.clear();
          totals.clear();
          parsed = parsed && parse_float_array(row.text(6), period_numbers) &&
                   parse_float_array(row.text(7), totals) && period_numbers.size() == totals.size();
          for (std::size_t i = 0; parsed && i < period_numbers.size(); ++i) {
            const auto period = static_cast<std::size_t>(period_numbers[i]);
            if (period >= 1 && period <= periods) sums[period - 1] = totals[i];
          }
        }
        visit(read_user(row), sums.data());
      });
  if (!streamed.is_ok()) return streamed;
  if (!parsed) return internal_error("scan_user_period_sums: unreadable array");
  return Status::ok();
}

Result<std::vector<SliceMetricStats>> PostgresStore::sliced_metric_stats(
    const std::string& experiment_id, const std::string& metric, const std::string& attribute,
    double cap) {
  if (!is_slice_attribute_name(attribute)) {
    return invalid_argument("not a user attribute name ([A-Za-z_][A-Za-z0-9_-]*, at most 64)",
                            "slice");
  }
  FULCRUM_WITH_LEASE(lease);
  // Free-form attributes are a JSON object of strings.
  std::string value_sql = "u.attributes::jsonb ->> $4::text";
  if (attribute == "tier") value_sql = "u.tier::text";
  if (attribute == "country" || attribute == "app_version") value_sql = "u." + attribute;
  // Grouped on the server: one row per (attribute value, variant).
  const std::string sql =
      std::string(kFirstExposureCte) + kPostPerUserCte + ",\nsliced AS (SELECT COALESCE(" +
      value_sql +
      ", '') AS slice, p.variant, p.post, LEAST(p.post, $3::float8) AS kept "
      "FROM per_user p LEFT JOIN users u ON u.user_id = p.user_id) "
      "SELECT slice, variant, COUNT(*), COUNT(*) FILTER (WHERE post > 0), SUM(kept), "
      "SUM(kept * kept) FROM sliced GROUP BY slice, variant";
  Params params;
  params.add(experiment_id).add(metric);
  char cap_text[64];
  if (cap == INFINITY) {
    params.add("Infinity");
  } else {
    const auto written = std::to_chars(cap_text, cap_text + sizeof cap_text, cap);
    params.add(std::string_view(cap_text, static_cast<std::size_t>(written.ptr - cap_text)));
  }
  if (value_sql.find("$4") != std::string::npos) params.add(attribute);
  auto result = run(lease.conn(), sql, params);
  if (!result.is_ok()) return result.status();
  std::vector<SliceMetricStats> rows;
  each_row(*result, [&](const Row& row) {
    SliceMetricStats cell;
    cell.slice = row.text(0);
    if (attribute == "tier" && !cell.slice.empty()) {
      cell.slice = tier_name(static_cast<Tier>(row.int32(0)));
    }
    cell.variant = row.text(1);
    cell.users = row.int64(2);
    cell.converted = row.int64(3);
    cell.sum = row.real(4);
    cell.sum_squares = row.real(5);
    rows.push_back(std::move(cell));
  });
  return rows;
}

Result<std::vector<Store::DailyCumulative>> PostgresStore::daily_cumulative(
    const std::string& experiment_id, const std::string& metric) {
  FULCRUM_WITH_LEASE(lease);
  // Users by day of first exposure and users by day of first conversion at or after it,
  // cumulated per variant by a window sum on the server.
  const std::string sql = std::string(kFirstExposureCte) + R"sql(,
first_conversion AS (
  SELECT f.variant, f.at AS exposed_at, MIN(m.at) AS converted_at
  FROM first_exposure f
  LEFT JOIN metric_events m
    ON m.metric = $2 AND m.user_id = f.user_id AND m.at >= f.at AND m.value > 0
  GROUP BY f.user_id, f.variant, f.at),
daily AS (
  SELECT variant, day, SUM(exposed) AS exposed, SUM(converted) AS converted FROM (
    SELECT variant, exposed_at - exposed_at % 86400 AS day, 1 AS exposed, 0 AS converted
      FROM first_conversion
    UNION ALL
    SELECT variant, converted_at - converted_at % 86400, 0, 1 FROM first_conversion
      WHERE converted_at IS NOT NULL) events
  GROUP BY variant, day)
SELECT variant, day, SUM(exposed) OVER running, SUM(converted) OVER running FROM daily
WINDOW running AS (PARTITION BY variant ORDER BY day)
ORDER BY variant, day)sql";
  auto result = run(lease.conn(), sql, Params().add(experiment_id).add(metric));
  if (!result.is_ok()) return result.status();
  std::vector<DailyCumulative> rows;
  each_row(*result, [&](const Row& row) {
    rows.push_back(DailyCumulative{row.int64(1), row.text(0), row.int64(2), row.int64(3)});
  });
  return rows;
}

namespace {

// put_document's compare-and-set on one connection (in or out of a transaction).
Result<std::int64_t> write_document(PGconn* conn, const Document& doc) {
  // Each branch is one statement whose WHERE / ON CONFLICT is the compare-and-set, so two
  // replicas writing the same version cannot both succeed. The change-feed row
  // (store/automation.h) is written by the same statement, unless the document stays out of
  // the feed.
  const bool create = doc.version == 0;
  const char* sql;
  if (create) {
    sql = doc.to_change_feed
              ? "WITH w AS (INSERT INTO documents(kind,id,status,body,created_at,"
                "updated_at,version) VALUES($1,$2,$3,$4,$5,$6,1) ON CONFLICT(kind,id) DO "
                "NOTHING RETURNING version,status,body,updated_at) "
                "INSERT INTO document_changes(kind,id,version,status,previous_status,body,"
                "at) SELECT $1,$2,w.version,w.status,'',w.body,w.updated_at FROM w "
                "RETURNING version"
              : "INSERT INTO documents(kind,id,status,body,created_at,updated_at,version) "
                "VALUES($1,$2,$3,$4,$5,$6,1) ON CONFLICT(kind,id) DO NOTHING RETURNING version";
  } else {
    sql = doc.to_change_feed
              ? "WITH o AS (SELECT status FROM documents WHERE kind=$1 AND id=$2), "
                "w AS (UPDATE documents SET status=$3, body=$4, updated_at=$5, "
                "version=version+1 WHERE kind=$1 AND id=$2 AND version=$6 "
                "RETURNING version,status,body,updated_at) "
                "INSERT INTO document_changes(kind,id,version,status,previous_status,body,"
                "at) SELECT $1,$2,w.version,w.status,COALESCE((SELECT status FROM o),''),"
                "w.body,w.updated_at FROM w RETURNING version"
              : "UPDATE documents SET status=$3, body=$4, updated_at=$5, version=version+1 "
                "WHERE kind=$1 AND id=$2 AND version=$6 RETURNING version";
  }
  Params params;
  params.add(doc.kind).add(doc.id).add(doc.status).add(doc.body);
  if (create) {
    params.add(doc.created_at).add(doc.updated_at);
  } else {
    params.add(doc.updated_at).add(doc.version);
  }
  auto result = run(conn, sql, params);
  if (!result.is_ok()) return result.status();
  if (PQntuples(result->get()) == 0) {
    if (create) {
      return Status(StatusCode::kAlreadyExists, doc.kind + " " + doc.id + " already exists");
    }
    return failed_precondition(doc.kind + " " + doc.id +
                               " was changed by someone else; reload and try again");
  }
  return create ? std::int64_t{1} : Row(result->get(), 0).int64(0);
}

Status copy_campaign_members(PGconn* conn, const std::vector<Store::CampaignMember>& members) {
  if (members.empty()) return Status::ok();
  return copy_rows(conn, "campaign_members(campaign_id,user_id,holdout,targeted_at)", members,
                   [](CopyWriter& w, const Store::CampaignMember& member) {
                     w.row(4);
                     w.text(member.campaign_id);
                     w.text(member.user_id);
                     w.boolean(member.holdout);
                     w.int64(member.targeted_at);
                   });
}

}  // namespace

Result<std::int64_t> PostgresStore::put_document(const Document& doc) {
  FULCRUM_WITH_LEASE(lease);
  return write_document(lease.conn(), doc);
}

Result<std::int64_t> PostgresStore::put_document_and_members(
    const Document& doc, const std::vector<CampaignMember>& members) {
  FULCRUM_WITH_LEASE(lease);
  Transaction transaction(lease.conn());
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  auto version = write_document(lease.conn(), doc);
  if (!version.is_ok()) return version.status();
  FULCRUM_RETURN_IF_ERROR(copy_campaign_members(lease.conn(), members));
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return version;
}

namespace {
constexpr char kDocumentColumns[] =
    "SELECT id,kind,status,body,created_at,updated_at,version FROM documents";
Document read_document(const Row& row) {
  return Document{row.text(0),  row.text(1),  row.text(2), row.text(3),
                  row.int64(4), row.int64(5), row.int64(6)};
}
}  // namespace

Result<std::optional<Document>> PostgresStore::find_document(const std::string& kind,
                                                             const std::string& id,
                                                             bool with_body) {
  FULCRUM_WITH_LEASE(lease);
  const char* columns = with_body ? kDocumentColumns
                                  : "SELECT id,kind,status,'',created_at,updated_at,version "
                                    "FROM documents";
  auto result = run(lease.conn(), std::string(columns) + " WHERE kind=$1 AND id=$2",
                    Params().add(kind).add(id));
  if (!result.is_ok()) return result.status();
  std::optional<Document> found;
  each_row(*result, [&](const Row& row) { found = read_document(row); });
  return found;
}

Result<std::optional<Document>> PostgresStore::get_document(const std::string& kind,
                                                            const std::string& id) {
  return find_document(kind, id, /*with_body=*/true);
}

Result<std::optional<Document>> PostgresStore::get_document_head(const std::string& kind,
                                                                 const std::string& id) {
  return find_document(kind, id, /*with_body=*/false);
}

Result<std::vector<Document>> PostgresStore::list_documents(const std::string& kind) {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), std::string(kDocumentColumns) + " WHERE kind=$1 ORDER BY created_at, id",
          Params().add(kind));
  if (!result.is_ok()) return result.status();
  std::vector<Document> documents;
  each_row(*result, [&](const Row& row) { documents.push_back(read_document(row)); });
  return documents;
}

Status PostgresStore::erase_document(const std::string& kind, const std::string& id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), "DELETE FROM documents WHERE kind=$1 AND id=$2",
                    Params().add(kind).add(id), PGRES_COMMAND_OK);
  if (!result.is_ok()) return result.status();
  if (std::strcmp(PQcmdTuples(result->get()), "0") == 0) {
    return not_found(kind + " " + id + " does not exist");
  }
  // The change feed kept a copy of every version's body: erased means erased there too.
  auto history = run(lease.conn(), "DELETE FROM document_changes WHERE kind=$1 AND id=$2",
                     Params().add(kind).add(id), PGRES_COMMAND_OK);
  if (!history.is_ok()) return history.status();
  // Dead row versions keep the text until a vacuum reclaims them (outside a transaction).
  return script(lease.conn(), "VACUUM documents, document_changes");
}

Status PostgresStore::add_campaign_members(const std::vector<CampaignMember>& members) {
  if (members.empty()) return Status::ok();
  FULCRUM_WITH_LEASE(lease);
  Transaction transaction(lease.conn());
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  FULCRUM_RETURN_IF_ERROR(copy_campaign_members(lease.conn(), members));
  return transaction.commit();
}

Result<std::vector<Store::CampaignMember>> PostgresStore::campaign_members(
    const std::string& campaign_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT campaign_id,user_id,holdout,targeted_at FROM campaign_members "
                    "WHERE campaign_id=$1 ORDER BY user_id",
                    Params().add(campaign_id));
  if (!result.is_ok()) return result.status();
  std::vector<CampaignMember> members;
  each_row(*result, [&](const Row& row) {
    members.push_back(CampaignMember{row.text(0), row.text(1), row.boolean(2), row.int64(3)});
  });
  return members;
}

Result<std::vector<std::pair<std::string, UnixSeconds>>> PostgresStore::last_targeted() {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), "SELECT user_id, MAX(targeted_at) FROM campaign_members GROUP BY user_id");
  if (!result.is_ok()) return result.status();
  std::vector<std::pair<std::string, UnixSeconds>> rows;
  each_row(*result, [&](const Row& row) { rows.emplace_back(row.text(0), row.int64(1)); });
  return rows;
}

Status PostgresStore::put_api_key(const ApiKeyRecord& key) {
  FULCRUM_WITH_LEASE(lease);
  Params params;
  params.add(key.key_id).add(key.key_hash).add(key.role).add(key.label).add(key.created_at);
  if (key.revoked_at) {
    params.add(*key.revoked_at);
  } else {
    params.add_null();
  }
  return command(lease.conn(),
                 "INSERT INTO api_keys(key_id,key_hash,role,label,created_at,revoked_at) "
                 "VALUES($1,$2,$3,$4,$5,$6)",
                 params);
}

namespace {
constexpr char kApiKeyColumns[] =
    "SELECT key_id,key_hash,role,label,created_at,revoked_at FROM api_keys";
ApiKeyRecord read_api_key(const Row& row) {
  ApiKeyRecord key{row.text(0), row.text(1), row.text(2), row.text(3), row.int64(4), std::nullopt};
  if (!row.is_null(5)) key.revoked_at = row.int64(5);
  return key;
}
}  // namespace

Result<std::optional<ApiKeyRecord>> PostgresStore::find_api_key_by_hash(
    const std::string& key_hash) {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), std::string(kApiKeyColumns) + " WHERE key_hash=$1", Params().add(key_hash));
  if (!result.is_ok()) return result.status();
  std::optional<ApiKeyRecord> found;
  each_row(*result, [&](const Row& row) { found = read_api_key(row); });
  return found;
}

Result<std::vector<ApiKeyRecord>> PostgresStore::list_api_keys() {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), std::string(kApiKeyColumns) + " ORDER BY created_at, key_id");
  if (!result.is_ok()) return result.status();
  std::vector<ApiKeyRecord> keys;
  each_row(*result, [&](const Row& row) { keys.push_back(read_api_key(row)); });
  return keys;
}

Status PostgresStore::revoke_api_key(const std::string& key_id, UnixSeconds at) {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), "UPDATE api_keys SET revoked_at=$2 WHERE key_id=$1 AND revoked_at IS NULL",
          Params().add(key_id).add(at), PGRES_COMMAND_OK);
  if (!result.is_ok()) return result.status();
  if (std::strcmp(PQcmdTuples(result->get()), "0") == 0) {
    return not_found("no active API key " + key_id);
  }
  return Status::ok();
}

Status PostgresStore::revoke_user_tokens(const std::string& user_id, UnixSeconds at) {
  FULCRUM_WITH_LEASE(lease);
  return command(lease.conn(),
                 "INSERT INTO user_token_revocations(user_id,revoked_at) VALUES($1,$2) "
                 "ON CONFLICT(user_id) DO UPDATE SET revoked_at="
                 "GREATEST(user_token_revocations.revoked_at,excluded.revoked_at)",
                 Params().add(user_id).add(at));
}

Result<std::optional<UnixSeconds>> PostgresStore::user_tokens_revoked_at(
    const std::string& user_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), "SELECT revoked_at FROM user_token_revocations WHERE user_id=$1",
                    Params().add(user_id));
  if (!result.is_ok()) return result.status();
  std::optional<UnixSeconds> found;
  each_row(*result, [&](const Row& row) { found = row.int64(0); });
  return found;
}

Result<std::optional<AuditEntry>> PostgresStore::audit_head() {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT sequence,at,actor,action,target,outcome,previous_hash,hash FROM "
                    "audit_log ORDER BY sequence DESC LIMIT 1");
  if (!result.is_ok()) return result.status();
  std::optional<AuditEntry> head;
  each_row(*result, [&](const Row& row) {
    head = AuditEntry{row.int64(0), row.int64(1), row.text(2), row.text(3),
                      row.text(4), row.text(5), row.text(6), row.text(7)};
  });
  return head;
}

Result<AuditEntry> PostgresStore::append_audit(
    AuditEntry entry, const std::function<std::string(const AuditEntry&)>& compute_hash) {
  auto appended = append_exposures_and_audit({}, {std::move(entry)}, compute_hash);
  if (!appended.is_ok()) return appended.status();
  return std::move(appended->front());
}

Status PostgresStore::scan_audit(const std::function<void(const AuditEntry&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(),
                "SELECT sequence,at,actor,action,target,outcome,previous_hash,hash FROM audit_log "
                "ORDER BY sequence",
                {}, [&](const Row& row) {
                  visit(AuditEntry{row.int64(0), row.int64(1), row.text(2), row.text(3),
                                   row.text(4), row.text(5), row.text(6), row.text(7)});
                });
}

// Group commit (the HTTP server's assign route): exposures and their audit entries in one
// transaction. The exposures go in before the audit lock is taken so the lock, which
// serialises every replica's audit appends, is held only for the chain's rows.
Result<std::vector<AuditEntry>> PostgresStore::append_exposures_and_audit(
    const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
    const std::function<std::string(const AuditEntry&)>& compute_hash) {
  if (exposures.empty() && entries.empty()) return entries;
  FULCRUM_WITH_LEASE(lease);
  PGconn* conn = lease.conn();
  Transaction transaction(conn);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  if (!exposures.empty()) {
    // One exposure per (experiment, user, variant) unless the caller identified it.
    std::vector<std::string> derived(exposures.size());
    std::vector<identity::EventId> ids;
    ids.reserve(exposures.size());
    for (std::size_t i = 0; i < exposures.size(); ++i) {
      if (!exposures[i].event_id.empty()) {
        ids.push_back({identity::Kind::kExposure, exposures[i].event_id});
      } else {
        derived[i] = identity::assignment_id(exposures[i]);
        ids.push_back({identity::Kind::kAssignment, derived[i]});
      }
    }
    auto claimed = claim_event_ids(conn, ids);
    if (!claimed.is_ok()) return claimed.status();
    std::vector<const ExposureEvent*> fresh;
    for (std::size_t i = 0; i < exposures.size(); ++i) {
      if ((*claimed)[i]) fresh.push_back(&exposures[i]);
    }
    FULCRUM_RETURN_IF_ERROR(copy_rows(conn, "exposures(experiment_id,user_id,variant,at)",
                                      fresh, [](CopyWriter& w, const ExposureEvent* e) {
                                        w.row(4);
                                        w.text(e->experiment_id);
                                        w.text(e->user_id);
                                        w.text(e->variant);
                                        w.int64(e->at);
                                      }));
  }
  if (!entries.empty()) {
    // Replicas append one group at a time: the lock is held until COMMIT, and under READ
    // COMMITTED the SELECT after it (a new statement, a new snapshot) sees the previous
    // holder's rows.
    {
      auto locked = run(conn, kAdvisoryLockSql, Params().add(".audit_log"));
      if (!locked.is_ok()) return locked.status();
    }
    auto last = run(conn, "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1");
    if (!last.is_ok()) return last.status();
    std::int64_t sequence = 0;
    std::string previous_hash;
    each_row(*last, [&](const Row& row) {
      sequence = row.int64(0);
      previous_hash = row.text(1);
    });
    std::string sql =
        "INSERT INTO audit_log(sequence,at,actor,action,target,outcome,previous_hash,hash) "
        "VALUES ";
    Params params;
    int next = 1;
    for (AuditEntry& entry : entries) {
      entry.sequence = ++sequence;
      entry.previous_hash = previous_hash;
      entry.hash = compute_hash(entry);
      previous_hash = entry.hash;
      if (next > 1) sql += ",";
      sql += "(";
      for (int column = 0; column < 8; ++column) {
        if (column > 0) sql += ",";
        sql += "$" + std::to_string(next++);
      }
      sql += ")";
      params.add(entry.sequence)
          .add(entry.at)
          .add(entry.actor)
          .add(entry.action)
          .add(entry.target)
          .add(entry.outcome)
          .add(entry.previous_hash)
          .add(entry.hash);
    }
    FULCRUM_RETURN_IF_ERROR(command(conn, sql, params));
  }
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return entries;
}

// --- usage rollups -------------------------------------------------------------------------

namespace {

constexpr char kUserDayColumns[] =
    "day, user_key, sessions, session_seconds, usage_events, uses, payments_succeeded, "
    "payments_failed, amount_succeeded_minor, amount_failed_minor, paywall_hits";
constexpr char kFeatureDayColumns[] =
    "day, user_key, feature_key, usage_events, uses, paywall_hits";
constexpr char kUserDayKey[] = "day, user_key";
constexpr char kFeatureDayKey[] = "day, user_key, feature_key";

UserDayRollup read_user_day(CopyRow row) {
  UserDayRollup r;
  r.day = row.int32();
  r.user_key = static_cast<std::uint32_t>(row.int64());
  r.sessions = row.int64();
  r.session_seconds = row.int64();
  r.usage_events = row.int64();
  r.uses = row.int64();
  r.payments_succeeded = row.int64();
  r.payments_failed = row.int64();
  r.amount_succeeded_minor = row.int64();
  r.amount_failed_minor = row.int64();
  r.paywall_hits = row.int64();
  return r;
}

FeatureDayRollup read_feature_day(CopyRow row) {
  FeatureDayRollup r;
  r.day = row.int32();
  r.user_key = static_cast<std::uint32_t>(row.int64());
  r.feature_key = static_cast<std::uint32_t>(row.int64());
  r.usage_events = row.int64();
  r.uses = row.int64();
  r.paywall_hits = row.int64();
  return r;
}

}  // namespace

Status PostgresStore::scan_user_keys(
    const std::function<void(std::uint32_t, const std::string&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  return stream(lease.conn(), "SELECT user_key, user_id FROM user_keys", {}, [&](const Row& row) {
    visit(static_cast<std::uint32_t>(row.int64(0)), row.text(1));
  });
}

Result<std::optional<std::uint32_t>> PostgresStore::find_user_key(const std::string& user_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result =
      run(lease.conn(), "SELECT user_key FROM user_keys WHERE user_id = $1", Params().add(user_id));
  if (!result.is_ok()) return result.status();
  std::optional<std::uint32_t> key;
  each_row(*result, [&](const Row& row) { key = static_cast<std::uint32_t>(row.int64(0)); });
  return key;
}

Status PostgresStore::scan_feature_keys(
    const std::function<void(std::uint32_t, const std::string&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), "SELECT feature_key, name FROM feature_keys");
  if (!result.is_ok()) return result.status();
  each_row(*result, [&](const Row& row) {
    visit(static_cast<std::uint32_t>(row.int64(0)), row.text(1));
  });
  return Status::ok();
}

Status PostgresStore::scan_user_days(const RollupQuery& query,
                                     const std::function<void(const UserDayRollup&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  const std::string sql =
      postgres::rollup_range_select("usage_user_days", kUserDayColumns, kUserDayKey, query);
  return copy_out(lease.conn(), sql, [&](CopyRow row) { visit(read_user_day(row)); });
}

Status PostgresStore::scan_feature_days(const RollupQuery& query,
                                        const std::function<void(const FeatureDayRollup&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  const std::string sql = postgres::rollup_range_select("usage_feature_days", kFeatureDayColumns,
                                                        kFeatureDayKey, query);
  return copy_out(lease.conn(), sql, [&](CopyRow row) { visit(read_feature_day(row)); });
}

Status PostgresStore::scan_tier_changes(std::optional<std::uint32_t> user_key,
                                        const std::function<void(const TierChangeRollup&)>& visit) {
  FULCRUM_WITH_LEASE(lease);
  Params params;
  std::string sql = "SELECT user_key, at, kind, from_tier, to_tier FROM usage_tier_changes";
  if (user_key) {
    sql += " WHERE user_key = $1::integer";
    params.add(static_cast<std::int64_t>(*user_key));
  }
  return stream(lease.conn(), sql, params, [&](const Row& row) {
    visit(TierChangeRollup{static_cast<std::uint32_t>(row.int64(0)), row.int64(1),
                           static_cast<SubscriptionChangeKind>(row.int64(2)),
                           static_cast<Tier>(row.int64(3)), static_cast<Tier>(row.int64(4))});
  });
}

Status PostgresStore::rebuild_rollups() {
  FULCRUM_WITH_LEASE(lease);
  PGconn* conn = lease.conn();
  Transaction transaction(conn);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  FULCRUM_RETURN_IF_ERROR(script(conn,
                                 "LOCK TABLE usage_user_days, usage_feature_days, "
                                 "usage_tier_changes IN EXCLUSIVE MODE; "
                                 "DELETE FROM usage_user_days; DELETE FROM usage_feature_days; "
                                 "DELETE FROM usage_tier_changes;" +
                                     postgres::rollup_merge_sql("")));
  return transaction.commit();
}

Result<RollupVerification> PostgresStore::verify_rollups() {
  FULCRUM_WITH_LEASE(lease);
  PGconn* conn = lease.conn();
  // One snapshot for the events and the rollups.
  Transaction transaction(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  RollupVerification report;
  // Recomputed rows FULL JOINed with the stored ones; a row differs when a side is missing
  // or any value differs.
  auto compare = [&](const std::string& recomputed, const char* table, const char* columns,
                     int key_count, std::int64_t& recomputed_rows) -> Status {
    std::vector<std::string> names;
    for (std::string_view rest = columns; !rest.empty();) {
      std::size_t comma = rest.find(',');
      std::string_view name = rest.substr(0, comma);
      while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
      names.emplace_back(name);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    std::string e_columns, e_values, t_values, join, key_text;
    for (std::size_t i = 0; i < names.size(); ++i) {
      e_columns += (i ? ", " : "") + names[i];
      if (static_cast<int>(i) < key_count) {
        join += std::string(i ? " AND " : "") + "e." + names[i] + " = t." + names[i];
        key_text += std::string(i ? " || ' ' || " : "") + "'" + names[i] + " ' || COALESCE(e." +
                    names[i] + ", t." + names[i] + ")::text";
      } else {
        e_values += std::string(e_values.empty() ? "" : ", ") + "e." + names[i];
        t_values += std::string(t_values.empty() ? "" : ", ") + "t." + names[i];
      }
    }
    const std::string sql = "WITH e(" + e_columns + ") AS (" + recomputed +
                            "), d AS (SELECT " + key_text + " AS k FROM e FULL JOIN " + table +
                            " t ON " + join + " WHERE e." + names[0] + " IS NULL OR t." +
                            names[0] + " IS NULL OR ROW(" + e_values + ") IS DISTINCT FROM ROW(" +
                            t_values + ")) SELECT (SELECT COUNT(*) FROM e), (SELECT COUNT(*) " +
                            "FROM d), (SELECT string_agg(k, '|') FROM (SELECT k FROM d LIMIT 10) s)";
    auto result = run(conn, sql);
    if (!result.is_ok()) return result.status();
    each_row(*result, [&](const Row& row) {
      recomputed_rows = row.int64(0);
      report.mismatches += row.int64(1);
      if (!row.is_null(2)) {
        std::string keys = row.text(2);
        for (std::size_t start = 0; start <= keys.size() && report.examples.size() < 10;) {
          std::size_t bar = keys.find('|', start);
          if (bar == std::string::npos) bar = keys.size();
          report.examples.push_back(std::string(table) + ": differs at " +
                                    keys.substr(start, bar - start));
          start = bar + 1;
        }
      }
    });
    return Status::ok();
  };
  FULCRUM_RETURN_IF_ERROR(compare(postgres::user_day_rollup_select(""), "usage_user_days",
                                  kUserDayColumns, 2, report.user_days));
  FULCRUM_RETURN_IF_ERROR(compare(postgres::feature_day_rollup_select(""), "usage_feature_days",
                                  kFeatureDayColumns, 3, report.feature_days));
  // The tier timeline is a multiset of rows: compare with EXCEPT ALL both ways.
  const std::string changes = postgres::tier_change_rollup_select("");
  const std::string stored = "SELECT user_key, at, kind, from_tier, to_tier FROM usage_tier_changes";
  auto result = run(conn, "SELECT (SELECT COUNT(*) FROM (" + changes +
                              ") c), (SELECT COUNT(*) FROM ((" + changes + " EXCEPT ALL " +
                              stored + ") UNION ALL (" + stored + " EXCEPT ALL " + changes +
                              ")) d)");
  if (!result.is_ok()) return result.status();
  each_row(*result, [&](const Row& row) {
    report.tier_changes = row.int64(0);
    const std::int64_t differing = row.int64(1);
    report.mismatches += differing;
    if (differing > 0 && report.examples.size() < 10) {
      report.examples.push_back("usage_tier_changes: " + std::to_string(differing) +
                                " rows differ from the subscription changes");
    }
  });
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return report;
}

// --- automation (store/automation.h) ------------------------------------------------------
// Leases and delivery claims are single statements whose WHERE is the compare-and-set, so
// replicas sharing the database cannot both win.

namespace {

constexpr char kPgDeliveryColumns[] =
    "SELECT delivery_id,endpoint_id,event_type,event_id,payload,status,attempts,"
    "next_attempt_at,claimed_until,last_status_code,last_error,created_at,delivered_at "
    "FROM webhook_deliveries";

WebhookDelivery read_pg_delivery(const Row& row) {
  WebhookDelivery d;
  d.delivery_id = row.text(0);
  d.endpoint_id = row.text(1);
  d.event_type = row.text(2);
  d.event_id = row.text(3);
  d.payload = row.text(4);
  d.status = row.text(5);
  d.attempts = row.int32(6);
  d.next_attempt_at = row.int64(7);
  d.claimed_until = row.int64(8);
  d.last_status_code = row.int32(9);
  d.last_error = row.text(10);
  d.created_at = row.int64(11);
  d.delivered_at = row.int64(12);
  return d;
}

std::string real_text(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

}  // namespace

Result<std::vector<DocumentChange>> PostgresStore::pending_document_changes(std::size_t limit) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT sequence,kind,id,version,status,previous_status,body,at "
                    "FROM document_changes WHERE NOT fanned_out ORDER BY sequence LIMIT $1",
                    Params().add(static_cast<std::int64_t>(limit)));
  if (!result.is_ok()) return result.status();
  std::vector<DocumentChange> changes;
  each_row(*result, [&](const Row& row) {
    changes.push_back(DocumentChange{row.int64(0), row.text(1), row.text(2), row.int64(3),
                                     row.text(4), row.text(5), row.text(6), row.int64(7)});
  });
  return changes;
}

Result<std::int64_t> PostgresStore::prune_document_changes(UnixSeconds before,
                                                           std::size_t limit) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "WITH doomed AS (SELECT sequence FROM document_changes WHERE fanned_out AND "
                    "at<$1 ORDER BY sequence LIMIT $2) DELETE FROM document_changes d USING "
                    "doomed WHERE d.sequence=doomed.sequence",
                    Params().add(before).add(static_cast<std::int64_t>(limit)), PGRES_COMMAND_OK);
  if (!result.is_ok()) return result.status();
  return std::strtoll(PQcmdTuples(result->get()), nullptr, 10);
}

Status PostgresStore::fan_out_document_changes(const std::vector<std::int64_t>& sequences,
                                               const std::vector<WebhookDelivery>& deliveries) {
  FULCRUM_WITH_LEASE(lease);
  Transaction transaction(lease.conn());
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  for (const WebhookDelivery& d : deliveries) {
    FULCRUM_RETURN_IF_ERROR(command(
        lease.conn(),
        "INSERT INTO webhook_deliveries(delivery_id,endpoint_id,event_type,event_id,payload,"
        "status,attempts,next_attempt_at,claimed_until,last_status_code,last_error,created_at,"
        "delivered_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) "
        "ON CONFLICT(delivery_id) DO NOTHING",
        Params()
            .add(d.delivery_id)
            .add(d.endpoint_id)
            .add(d.event_type)
            .add(d.event_id)
            .add(d.payload)
            .add(d.status)
            .add(static_cast<std::int64_t>(d.attempts))
            .add(d.next_attempt_at)
            .add(d.claimed_until)
            .add(static_cast<std::int64_t>(d.last_status_code))
            .add(d.last_error)
            .add(d.created_at)
            .add(d.delivered_at)));
  }
  for (std::int64_t sequence : sequences) {
    FULCRUM_RETURN_IF_ERROR(command(lease.conn(),
                                    "UPDATE document_changes SET fanned_out=TRUE WHERE sequence=$1",
                                    Params().add(sequence)));
  }
  return transaction.commit();
}

Result<JobLeaseOutcome> PostgresStore::acquire_job_lease(const std::string& job,
                                                         const std::string& period,
                                                         const std::string& holder,
                                                         UnixSeconds now,
                                                         UnixSeconds expires_at) {
  FULCRUM_WITH_LEASE(lease);
  // Insert, or take over a lease that is not done and expired (or already ours); the
  // conflict branch's WHERE is evaluated on the locked current row.
  auto result = run(lease.conn(),
                    "INSERT INTO job_leases AS l(job,period,holder,expires_at,done) "
                    "VALUES($1,$2,$3,$5,FALSE) ON CONFLICT(job,period) DO UPDATE SET "
                    "holder=excluded.holder, expires_at=excluded.expires_at "
                    "WHERE NOT l.done AND (l.expires_at <= $4 OR l.holder = $3) "
                    "RETURNING holder",
                    Params().add(job).add(period).add(holder).add(now).add(expires_at));
  if (!result.is_ok()) return result.status();
  if (PQntuples(result->get()) == 1) return JobLeaseOutcome::kAcquired;
  auto current = run(lease.conn(), "SELECT done FROM job_leases WHERE job=$1 AND period=$2",
                     Params().add(job).add(period));
  if (!current.is_ok()) return current.status();
  bool done = false;
  each_row(*current, [&](const Row& row) { done = row.boolean(0); });
  return done ? JobLeaseOutcome::kAlreadyDone : JobLeaseOutcome::kHeldByOther;
}

Status PostgresStore::finish_job_lease(const std::string& job, const std::string& period,
                                       const std::string& holder, bool done) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    done ? "UPDATE job_leases SET done=TRUE WHERE job=$1 AND period=$2 AND "
                           "holder=$3 AND NOT done"
                         : "DELETE FROM job_leases WHERE job=$1 AND period=$2 AND holder=$3 "
                           "AND NOT done",
                    Params().add(job).add(period).add(holder), PGRES_COMMAND_OK);
  if (!result.is_ok()) return result.status();
  if (std::string(PQcmdTuples(result->get())) == "0") {
    return failed_precondition("the lease of " + job + " " + period + " is no longer held by " +
                               holder);
  }
  return Status::ok();
}

Result<std::int64_t> PostgresStore::put_job_run(const JobRun& run_record) {
  FULCRUM_WITH_LEASE(lease);
  if (run_record.run_id == 0) {
    auto result = run(lease.conn(),
                      "INSERT INTO job_runs(job,period,runner,started_at,finished_at,"
                      "duration_seconds,outcome,detail) VALUES($1,$2,$3,$4,$5,$6,$7,$8) "
                      "RETURNING run_id",
                      Params()
                          .add(run_record.job)
                          .add(run_record.period)
                          .add(run_record.runner)
                          .add(run_record.started_at)
                          .add(run_record.finished_at)
                          .add(real_text(run_record.duration_seconds))
                          .add(run_record.outcome)
                          .add(run_record.detail));
    if (!result.is_ok()) return result.status();
    return Row(result->get(), 0).int64(0);
  }
  FULCRUM_RETURN_IF_ERROR(command(lease.conn(),
                                  "UPDATE job_runs SET finished_at=$2, duration_seconds=$3, "
                                  "outcome=$4, detail=$5 WHERE run_id=$1",
                                  Params()
                                      .add(run_record.run_id)
                                      .add(run_record.finished_at)
                                      .add(real_text(run_record.duration_seconds))
                                      .add(run_record.outcome)
                                      .add(run_record.detail)));
  return run_record.run_id;
}

Result<std::vector<JobRun>> PostgresStore::list_job_runs(const std::string& job,
                                                         std::size_t limit) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "SELECT run_id,job,period,runner,started_at,finished_at,duration_seconds,"
                    "outcome,detail FROM job_runs WHERE ($1::text='' OR job=$1) "
                    "ORDER BY run_id DESC LIMIT $2",
                    Params().add(job).add(static_cast<std::int64_t>(limit)));
  if (!result.is_ok()) return result.status();
  std::vector<JobRun> runs;
  each_row(*result, [&](const Row& row) {
    runs.push_back(JobRun{row.int64(0), row.text(1), row.text(2), row.text(3), row.int64(4),
                          row.int64(5), row.real(6), row.text(7), row.text(8)});
  });
  return runs;
}

Result<std::vector<WebhookDelivery>> PostgresStore::claim_webhook_deliveries(
    UnixSeconds now, UnixSeconds claim_until, std::size_t limit) {
  FULCRUM_WITH_LEASE(lease);
  // SKIP LOCKED: two replicas claiming at once get disjoint deliveries.
  auto result = run(lease.conn(),
                    "UPDATE webhook_deliveries SET claimed_until=$2 WHERE delivery_id IN ("
                    "SELECT delivery_id FROM webhook_deliveries WHERE status='pending' AND "
                    "next_attempt_at<=$1 AND claimed_until<=$1 ORDER BY next_attempt_at, "
                    "delivery_id LIMIT $3 FOR UPDATE SKIP LOCKED) "
                    "RETURNING delivery_id,endpoint_id,event_type,event_id,payload,status,"
                    "attempts,next_attempt_at,claimed_until,last_status_code,last_error,"
                    "created_at,delivered_at",
                    Params().add(now).add(claim_until).add(static_cast<std::int64_t>(limit)));
  if (!result.is_ok()) return result.status();
  std::vector<WebhookDelivery> due;
  each_row(*result, [&](const Row& row) { due.push_back(read_pg_delivery(row)); });
  std::sort(due.begin(), due.end(), [](const WebhookDelivery& a, const WebhookDelivery& b) {
    return std::tie(a.next_attempt_at, a.delivery_id) < std::tie(b.next_attempt_at, b.delivery_id);
  });
  return due;
}

Status PostgresStore::update_webhook_delivery(const WebhookDelivery& d) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    "UPDATE webhook_deliveries SET status=$2, attempts=$3, next_attempt_at=$4, "
                    "claimed_until=$5, last_status_code=$6, last_error=$7, delivered_at=$8 "
                    "WHERE delivery_id=$1",
                    Params()
                        .add(d.delivery_id)
                        .add(d.status)
                        .add(static_cast<std::int64_t>(d.attempts))
                        .add(d.next_attempt_at)
                        .add(d.claimed_until)
                        .add(static_cast<std::int64_t>(d.last_status_code))
                        .add(d.last_error)
                        .add(d.delivered_at),
                    PGRES_COMMAND_OK);
  if (!result.is_ok()) return result.status();
  if (std::string(PQcmdTuples(result->get())) == "0") {
    return not_found("no webhook delivery " + d.delivery_id);
  }
  return Status::ok();
}

Result<std::optional<WebhookDelivery>> PostgresStore::get_webhook_delivery(
    const std::string& delivery_id) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(), std::string(kPgDeliveryColumns) + " WHERE delivery_id=$1",
                    Params().add(delivery_id));
  if (!result.is_ok()) return result.status();
  std::optional<WebhookDelivery> found;
  each_row(*result, [&](const Row& row) { found = read_pg_delivery(row); });
  return found;
}

Result<std::vector<WebhookDelivery>> PostgresStore::list_webhook_deliveries(
    const WebhookDeliveryFilter& filter) {
  FULCRUM_WITH_LEASE(lease);
  auto result = run(lease.conn(),
                    std::string(kPgDeliveryColumns) +
                        " WHERE ($1::text='' OR endpoint_id=$1) AND ($2::text='' OR status=$2) "
                        "ORDER BY created_at DESC, delivery_id DESC LIMIT $3",
                    Params().add(filter.endpoint_id).add(filter.status).add(
                        static_cast<std::int64_t>(filter.limit)));
  if (!result.is_ok()) return result.status();
  std::vector<WebhookDelivery> out;
  each_row(*result, [&](const Row& row) { out.push_back(read_pg_delivery(row)); });
  return out;
}

}  // namespace fulcrum
