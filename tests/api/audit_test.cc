// The keyed, anchored audit log against a real SQLite file changed behind the store's back
// (as an attacker with file access but without the key file would): every attack of the
// issue is detected and the failing entries are named.
#include "api/audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>

#include "api/keyring.h"

namespace fulcrum::api {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() / ("fulcrum_audit_" + std::to_string(random()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "f.db").string();
    checkpoints_ = (dir_ / "f.db.audit-checkpoints").string();
    reopen();
    for (int i = 1; i <= 5; ++i) {
      auto appended = append_audit(*store_, key_, entry(i));
      ASSERT_TRUE(appended.is_ok()) << appended.status().to_string();
      EXPECT_EQ(appended->sequence, i);
      EXPECT_EQ(appended->hash, key_.entry_hash(*appended));
      EXPECT_NE(appended->hash, plain_audit_entry_hash(*appended));
    }
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static AuditEntry entry(int i) {
    AuditEntry e;
    e.at = 1'700'000'000 + i;
    e.actor = "key_" + std::to_string(i);
    e.action = "POST /ab-tests";
    e.target = "test_" + std::to_string(i);
    e.outcome = "ok";
    return e;
  }
  void reopen() {
    store_.reset();
    auto opened = open_store(path_);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  std::vector<AuditEntry> entries() {
    std::vector<AuditEntry> all;
    EXPECT_TRUE(store_->scan_audit([&](const AuditEntry& e) { all.push_back(e); }).is_ok());
    return all;
  }
  // Runs SQL on the file with the SQLite C API, the store closed.
  void tamper(const std::vector<std::string>& statements) {
    store_.reset();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    for (const std::string& sql : statements) {
      char* error = nullptr;
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
          << (error ? error : "") << " in " << sql;
      sqlite3_free(error);
    }
    sqlite3_close(db);
    reopen();
  }
  static std::string update_sql(const AuditEntry& e) {
    auto quote = [](const std::string& text) { return "'" + text + "'"; };
    return "UPDATE audit_log SET actor=" + quote(e.actor) + ", outcome=" + quote(e.outcome) +
           ", previous_hash=" + quote(e.previous_hash) + ", hash=" + quote(e.hash) +
           " WHERE sequence=" + std::to_string(e.sequence);
  }
  // Rewrites entries from `from` on with plain SHA-256, as `fulcrum audit verify` accepted
  // before the chain was keyed.
  void rewrite_with_plain_hashes(std::vector<AuditEntry> all, std::size_t from) {
    std::vector<std::string> statements;
    for (std::size_t i = from; i < all.size(); ++i) {
      all[i].previous_hash = i == 0 ? "" : all[i - 1].hash;
      all[i].hash = plain_audit_entry_hash(all[i]);
      statements.push_back(update_sql(all[i]));
    }
    tamper(statements);
  }
  Result<AuditVerification> verify(const std::string& expected_head = {}) {
    std::vector<CheckpointLine> lines;
    auto read = read_checkpoint_file(checkpoints_);
    if (read.is_ok()) lines = std::move(*read);
    return verify_audit_chain(*store_, key_, lines, expected_head);
  }
  static bool mentions(const AuditVerification& report, const std::string& text) {
    for (const std::string& problem : report.problems) {
      if (problem.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::filesystem::path dir_;
  std::string path_, checkpoints_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{1'700'000'100};
  AuditKey key_{KeySet::generate(1).audit_secret};
};

TEST_F(AuditTest, IntactChainVerifies) {
  auto report = verify();
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->intact) << report->problems.front();
  EXPECT_EQ(report->entries, 5);
  EXPECT_EQ(report->legacy_entries, 0);
  EXPECT_FALSE(report->head_hash.empty());
}

TEST_F(AuditTest, HashDependsOnEveryFieldAndOnTheKey) {
  AuditEntry a;
  a.actor = "a|b";
  a.action = "c";
  AuditEntry b;
  b.actor = "a";
  b.action = "b|c";
  EXPECT_NE(key_.entry_hash(a), key_.entry_hash(b));
  AuditEntry c = a;
  c.at = 1;
  EXPECT_NE(key_.entry_hash(a), key_.entry_hash(c));
  AuditKey other(KeySet::generate(1).audit_secret);
  EXPECT_NE(key_.entry_hash(a), other.entry_hash(a));
}

// The issue: edit rows and recompute the hashes, and verify reported intact.
TEST_F(AuditTest, EditedRowWithRecomputedHashesIsDetected) {
  std::vector<AuditEntry> all = entries();
  all[2].actor = "someone_else";
  rewrite_with_plain_hashes(all, 2);
  auto report = verify();
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  ASSERT_FALSE(report->problems.empty());
  EXPECT_EQ(report->problems[0].rfind("entry 3 ", 0), 0u) << report->problems[0];
  EXPECT_TRUE(mentions(*report, "entry 5 ")) << "every rewritten row is named";
  EXPECT_FALSE(mentions(*report, "entry 2 "));
}

// The issue: appended forged rows passed even with --expect-head.
TEST_F(AuditTest, AppendedForgedRowsAreDetectedEvenWithTheExpectedHead) {
  const std::string head = verify()->head_hash;
  AuditEntry forged = entry(6);
  forged.sequence = 6;
  forged.previous_hash = head;
  forged.hash = plain_audit_entry_hash(forged);
  tamper({"INSERT INTO audit_log(sequence,at,actor,action,target,outcome,previous_hash,hash) "
          "VALUES(6,1700000006,'key_6','POST /ab-tests','test_6','ok','" + head + "','" +
          forged.hash + "')"});
  auto report = verify(head);
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  ASSERT_EQ(report->problems.size(), 1u) << report->problems[0];
  EXPECT_EQ(report->problems[0].rfind("entry 6 ", 0), 0u) << report->problems[0];
}

TEST_F(AuditTest, DeletedMiddleRowIsDetected) {
  tamper({"DELETE FROM audit_log WHERE sequence = 2"});
  auto report = verify();
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->intact);
  EXPECT_EQ(report->entries, 4);
  EXPECT_TRUE(mentions(*report, "entry 3 "));
}

// The issue: deleting the newest rows or the whole log passed without --expect-head. The
// checkpoint file (outside the store) remembers the head.
TEST_F(AuditTest, TruncationIsDetectedAgainstTheCheckpointFile) {
  ASSERT_TRUE(write_checkpoint(*store_, key_, clock_, checkpoints_).is_ok());
  ASSERT_TRUE(verify()->intact);
  tamper({"DELETE FROM audit_log WHERE sequence >= 4"});
  auto truncated = verify();
  ASSERT_TRUE(truncated.is_ok());
  EXPECT_FALSE(truncated->intact);
  EXPECT_TRUE(mentions(*truncated, "ends at entry 3 but a checkpoint covers entry 5"))
      << truncated->problems[0];
  tamper({"DELETE FROM audit_log"});
  auto emptied = verify();
  ASSERT_TRUE(emptied.is_ok());
  EXPECT_FALSE(emptied->intact);
  EXPECT_TRUE(mentions(*emptied, "ends at entry 0 but a checkpoint covers entry 5"));
}

TEST_F(AuditTest, RewriteAfterACheckpointAndForgedCheckpointsAreDetected) {
  ASSERT_TRUE(write_checkpoint(*store_, key_, clock_, checkpoints_).is_ok());
  // The log's newest row replaced by one with a different (even validly keyed) hash: an
  // insider with the key rewriting history after the checkpoint was exported.
  std::vector<AuditEntry> all = entries();
  all[4].outcome = "error: 500";
  all[4].hash = key_.entry_hash(all[4]);
  tamper({update_sql(all[4])});
  auto rewritten = verify();
  ASSERT_TRUE(rewritten.is_ok());
  EXPECT_FALSE(rewritten->intact);
  EXPECT_TRUE(mentions(*rewritten, "differs from checkpoint line 1"));
  // A checkpoint line edited to claim a shorter log no longer carries a valid signature.
  auto lines = read_checkpoint_file(checkpoints_);
  ASSERT_TRUE(lines.is_ok());
  AuditCheckpoint edited = *(*lines)[0].checkpoint;
  edited.sequence = 3;
  ASSERT_TRUE(append_checkpoint_file(checkpoints_, edited).is_ok());
  auto forged = verify();
  ASSERT_TRUE(forged.is_ok());
  EXPECT_TRUE(mentions(*forged, "checkpoint line 2: signature is invalid"));
}

// A store from before the key file: its plain chain is re-anchored by one keyed entry and
// stays verifiable; editing the legacy part is still detected.
TEST_F(AuditTest, LegacyPlainChainIsReanchoredAndStaysProtected) {
  tamper({"DELETE FROM audit_log"});
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(store_->append_audit(entry(i), plain_audit_entry_hash).is_ok());
  }
  auto unanchored = verify();
  ASSERT_TRUE(unanchored.is_ok());
  EXPECT_FALSE(unanchored->intact);
  EXPECT_TRUE(mentions(*unanchored, "not anchored"));
  auto reanchored = reanchor_legacy_chain(*store_, key_, clock_);
  ASSERT_TRUE(reanchored.is_ok());
  EXPECT_TRUE(*reanchored);
  EXPECT_FALSE(*reanchor_legacy_chain(*store_, key_, clock_));  // once
  ASSERT_TRUE(append_audit(*store_, key_, entry(6)).is_ok());
  auto report = verify();
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->intact) << report->problems.front();
  EXPECT_EQ(report->entries, 6);
  EXPECT_EQ(report->legacy_entries, 4);
  EXPECT_EQ(entries()[4].action, kReanchorAction);
  // Rewriting the legacy part consistently (plain hashes recomputed) breaks the anchor.
  std::vector<AuditEntry> all = entries();
  all[1].actor = "someone_else";
  std::vector<AuditEntry> legacy(all.begin(), all.begin() + 4);
  rewrite_with_plain_hashes(legacy, 1);
  auto broken = verify();
  ASSERT_TRUE(broken.is_ok());
  EXPECT_FALSE(broken->intact);
  EXPECT_TRUE(mentions(*broken, "entry 5 (audit.reanchor"));
}

}  // namespace
}  // namespace fulcrum::api
