// Test support for src/automation: a real SQLite store in a temp directory, a PostgreSQL
// store on FULCRUM_TEST_PG_URL in a per-test schema, and the webhook receiver
// (webhook_receiver.h).
#pragma once

#include <utility>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "../support/sqlite_store_fixture.h"
#include "webhook_receiver.h"

namespace fulcrum::automation::testing {

using SqliteFixture = testing_support::SqliteStoreFixture;

// A fresh schema per test on the PostgreSQL server of FULCRUM_TEST_PG_URL; skips without it
// (fails in CI, which must run the PostgreSQL tests).
class PostgresSchema {
 public:
  bool open() {
    const char* url = std::getenv("FULCRUM_TEST_PG_URL");
    if (url == nullptr || *url == '\0') return false;
    url_ = url;
    schema_ = "fulcrum_autotest_" + std::to_string(::getpid()) + "_" +
              std::to_string(std::random_device{}() % 1000000);
    PGconn* admin = PQconnectdb(url_.c_str());
    PQclear(PQexec(admin, ("CREATE SCHEMA " + schema_).c_str()));
    PQfinish(admin);
    return true;
  }
  ~PostgresSchema() {
    if (schema_.empty()) return;
    PGconn* admin = PQconnectdb(url_.c_str());
    PQclear(PQexec(admin, ("DROP SCHEMA " + schema_ + " CASCADE").c_str()));
    PQfinish(admin);
  }
  std::string store_url() const {
    const char* separator = url_.find('?') == std::string::npos ? "?" : "&";
    return url_ + separator + "options=-csearch_path%3D" + schema_;
  }

 private:
  std::string url_, schema_;
};

#define FULCRUM_REQUIRE_POSTGRES(schema)                                             \
  do {                                                                               \
    if (!(schema).open()) {                                                          \
      const char* ci = std::getenv("CI");                                            \
      if (ci != nullptr && std::string(ci) == "true") {                              \
        FAIL() << "FULCRUM_TEST_PG_URL is not set: CI must run the PostgreSQL tests"; \
      }                                                                              \
      GTEST_SKIP() << "FULCRUM_TEST_PG_URL not set";                                 \
    }                                                                                \
  } while (0)

}  // namespace fulcrum::automation::testing
