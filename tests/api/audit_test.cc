// The hash-chained audit log: appended entries verify; editing or deleting a row directly in
// the SQLite file (as an attacker with file access would) is detected.
#include "api/audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>

namespace fulcrum::api {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() / ("fulcrum_audit_" + std::to_string(random()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "f.db").string();
    reopen();
    for (int i = 1; i <= 5; ++i) {
      AuditEntry entry;
      entry.at = 1'700'000'000 + i;
      entry.actor = "key_" + std::to_string(i);
      entry.action = "POST /ab-tests";
      entry.target = "test_" + std::to_string(i);
      entry.outcome = "ok";
      auto appended = append_audit(*store_, entry);
      ASSERT_TRUE(appended.is_ok()) << appended.status().to_string();
      EXPECT_EQ(appended->sequence, i);
      EXPECT_EQ(appended->hash, audit_entry_hash(*appended));
    }
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto opened = open_store(path_);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  // Changes the file behind the store's back with the SQLite C API.
  void tamper(const std::string& sql) {
    store_.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    EXPECT_EQ(sqlite3_changes(db), 1);
    sqlite3_close(db);
    reopen();
  }
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditTest, IntactChainVerifies) {
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->intact);
  EXPECT_EQ(report->entries, 5);
  EXPECT_TRUE(report->problems.empty());
  EXPECT_FALSE(report->head_hash.empty());
}

TEST_F(AuditTest, HashDependsOnEveryFieldWithoutSeparatorAmbiguity) {
  AuditEntry a;
  a.actor = "a|b";
  a.action = "c";
  AuditEntry b;
  b.actor = "a";
  b.action = "b|c";
  EXPECT_NE(audit_entry_hash(a), audit_entry_hash(b));
  AuditEntry c = a;
  c.at = 1;
  EXPECT_NE(audit_entry_hash(a), audit_entry_hash(c));
}

TEST_F(AuditTest, EditedRowIsDetected) {
  tamper("UPDATE audit_log SET outcome = 'denied' WHERE sequence = 3");
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  ASSERT_FALSE(report->problems.empty());
  EXPECT_NE(report->problems[0].find("entry 3"), std::string::npos) << report->problems[0];
}

TEST_F(AuditTest, EditedRowWithRecomputedOwnHashIsStillDetected) {
  // An attacker who knows the hash recipe fixes row 3's own hash; row 4 still points to the
  // old one.
  auto entries = std::vector<AuditEntry>();
  ASSERT_TRUE(store_->scan_audit([&](const AuditEntry& e) { entries.push_back(e); }).is_ok());
  AuditEntry edited = entries[2];
  edited.actor = "someone_else";
  tamper("UPDATE audit_log SET actor = 'someone_else', hash = '" + audit_entry_hash(edited) +
         "' WHERE sequence = 3");
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  ASSERT_FALSE(report->problems.empty());
  EXPECT_NE(report->problems[0].find("entry 4"), std::string::npos) << report->problems[0];
}

TEST_F(AuditTest, DeletedRowIsDetected) {
  tamper("DELETE FROM audit_log WHERE sequence = 2");
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  EXPECT_EQ(report->entries, 4);
}

TEST_F(AuditTest, DeletedNewestRowIsDetectedAgainstARecordedHead) {
  auto before = verify_audit_chain(*store_);
  ASSERT_TRUE(before.is_ok());
  tamper("DELETE FROM audit_log WHERE sequence = 5");
  auto without_anchor = verify_audit_chain(*store_);
  ASSERT_TRUE(without_anchor.is_ok());
  EXPECT_TRUE(without_anchor->intact);  // a shorter chain is self-consistent...
  auto anchored = verify_audit_chain(*store_, before->head_hash);
  ASSERT_TRUE(anchored.is_ok());
  EXPECT_FALSE(anchored->intact);  // ...but the recorded head is gone
}

}  // namespace
}  // namespace fulcrum::api
