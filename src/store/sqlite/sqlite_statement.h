// Internal to the SQLite backend: prepared statements and transactions over the C API.
#pragma once

#include <sqlite3.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum::sqlite {

// A full disk (SQLITE_FULL, or a write refused with ENOSPC / EDQUOT / EFBIG, the last for a
// file-size limit) is kResourceExhausted: nothing was stored and a retry may succeed once
// space is freed. Anything else is kInternal.
inline StatusCode sqlite_status_code(sqlite3* db) {
  if (db == nullptr) return StatusCode::kInternal;
  const int primary = sqlite3_errcode(db) & 0xff;
  if (primary == SQLITE_FULL) return StatusCode::kResourceExhausted;
  if (primary == SQLITE_IOERR) {
    const int error = sqlite3_system_errno(db);
    if (error == ENOSPC || error == EDQUOT || error == EFBIG) return StatusCode::kResourceExhausted;
  }
  return StatusCode::kInternal;
}

// `message` with the status code of db's last error.
inline Status sqlite_status(sqlite3* db, std::string message) {
  const StatusCode code = sqlite_status_code(db);
  if (code == StatusCode::kResourceExhausted) {
    message = "the store's disk is full; nothing was stored (" + message + ")";
  }
  return Status(code, std::move(message));
}

inline Status sqlite_error(sqlite3* db, const std::string& what) {
  return sqlite_status(db, what + ": " + (db ? sqlite3_errmsg(db) : "cannot open database"));
}

inline Status exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    return sqlite_status(db, "sqlite: " + message);
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
    // An empty view may have a null data(), which SQLite would store as NULL.
    sqlite3_bind_text(stmt_, index, value.data() ? value.data() : "",
                      static_cast<int>(value.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind_blob(int index, std::string_view value) {
    sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    return *this;
  }
  std::string_view blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    return data ? std::string_view(static_cast<const char*>(data),
                                   static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string_view();
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
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Status error = sqlite_error(db_, "query failed");
        sqlite3_reset(stmt_);
        return error;
      }
      fn(*this);
    }
    sqlite3_reset(stmt_);  // ready to run again
    return Status::ok();
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

}  // namespace fulcrum::sqlite

namespace fulcrum {

// RAII lease of a pooled read connection.
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
  SqliteStore::Reader reader(*this);                     \
  if (!reader.status().is_ok()) return reader.status()

}  // namespace fulcrum
