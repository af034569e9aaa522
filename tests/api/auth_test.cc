// API keys and user tokens against a real SQLite store.
#include "api/auth.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "api/keyring.h"
#include "core/ids.h"

namespace fulcrum::api {
namespace {

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    dir_ = std::filesystem::temp_directory_path() / ("fulcrum_auth_" + std::to_string(random()));
    std::filesystem::create_directories(dir_);
    auto opened = open_store((dir_ / "f.db").string());
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::shared_ptr<Keyring> keyring() { return Keyring::ephemeral(KeySet::generate(clock_.now())); }
  // A token as an attacker holding `secret` would make it: any payload, a valid MAC.
  static std::string forge(const std::string& prefix_and_kid, const std::string& payload,
                           const std::string& secret) {
    auto b64 = [](std::string_view bytes) {
      std::string out(sodium_base64_encoded_len(bytes.size(),
                                                sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                      '\0');
      sodium_bin2base64(out.data(), out.size(),
                        reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING);
      out.resize(std::strlen(out.c_str()));
      return out;
    };
    const std::string signed_part = prefix_and_kid + b64(payload);
    unsigned char mac[crypto_auth_BYTES];
    crypto_auth(mac, reinterpret_cast<const unsigned char*>(signed_part.data()),
                signed_part.size(), reinterpret_cast<const unsigned char*>(secret.data()));
    return signed_part + "." +
           b64(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{1'700'000'000};
};

TEST_F(AuthTest, CreatedKeyIsStoredHashedAndAuthenticatesWithItsRole) {
  auto created = create_api_key(*store_, clock_, "analyst", "ci");
  ASSERT_TRUE(created.is_ok());
  auto keys = store_->list_api_keys();
  ASSERT_TRUE(keys.is_ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].key_hash, sha256_hex(created->secret));
  EXPECT_EQ((*keys)[0].key_hash.find(created->secret), std::string::npos);
  EXPECT_EQ((*keys)[0].label, "ci");

  Authenticator auth(*store_, clock_, keyring(), std::chrono::milliseconds(0));
  auto context = auth.authenticate("Bearer " + created->secret);
  ASSERT_TRUE(context.is_ok());
  EXPECT_TRUE(context->authenticated);
  EXPECT_EQ(context->role, Role::kAnalyst);
  EXPECT_EQ(context->actor, created->record.key_id);
}

// With a key cache, a revocation written by another process (`fulcrum keys revoke`) is
// honoured once the cached record is older than the cache interval.
TEST_F(AuthTest, CachedKeyIsRecheckedAfterTheCacheInterval) {
  auto created = create_api_key(*store_, clock_, "service", "svc");
  ASSERT_TRUE(created.is_ok());
  Authenticator auth(*store_, clock_, keyring(), std::chrono::milliseconds(100));
  ASSERT_TRUE(auth.authenticate("Bearer " + created->secret).is_ok());
  ASSERT_TRUE(store_->revoke_api_key(created->record.key_id, clock_.now()).is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(auth.authenticate("Bearer " + created->secret).status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, RejectsUnknownRoleUnknownKeyAndRevokedKey) {
  auto bad = create_api_key(*store_, clock_, "root", "x");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "role");

  Authenticator auth(*store_, clock_, keyring(), std::chrono::milliseconds(0));
  EXPECT_EQ(auth.authenticate("Bearer fk_0000").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.authenticate("Basic abc").status().code(), StatusCode::kUnauthenticated);
  auto anonymous = auth.authenticate("");
  ASSERT_TRUE(anonymous.is_ok());
  EXPECT_FALSE(anonymous->authenticated);

  auto created = create_api_key(*store_, clock_, "service", "svc");
  ASSERT_TRUE(created.is_ok());
  ASSERT_TRUE(auth.authenticate("Bearer " + created->secret).is_ok());
  ASSERT_TRUE(store_->revoke_api_key(created->record.key_id, clock_.now()).is_ok());
  EXPECT_EQ(auth.authenticate("Bearer " + created->secret).status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, UserTokensCarryTheUserAndExpire) {
  Authenticator auth(*store_, clock_, keyring(), std::chrono::milliseconds(0));
  auto token = auth.mint_user_token("user-42", 600, "key_svc");
  ASSERT_TRUE(token.is_ok());
  EXPECT_EQ(token->rfind("fut2.t1.", 0), 0u) << *token;  // carries the signing key's id
  auto context = auth.authenticate("Bearer " + *token);
  ASSERT_TRUE(context.is_ok());
  EXPECT_EQ(context->role, Role::kUser);
  EXPECT_EQ(context->user_id, "user-42");
  EXPECT_EQ(context->actor, "user:user-42");
  EXPECT_EQ(context->minted_by, "key_svc");

  clock_.advance(599);
  EXPECT_TRUE(auth.verify_user_token(*token).is_ok());
  clock_.advance(1);
  EXPECT_EQ(auth.verify_user_token(*token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, TamperedOrForeignTokensAreRejected) {
  Authenticator auth(*store_, clock_, keyring(), std::chrono::milliseconds(0));
  Authenticator other(*store_, clock_, keyring(), std::chrono::milliseconds(0));
  auto token = auth.mint_user_token("alice", 600);
  ASSERT_TRUE(token.is_ok());
  EXPECT_FALSE(other.verify_user_token(*token).is_ok());  // signed with another secret
  // Swap the payload for another user's, keep the MAC.
  auto bob = auth.mint_user_token("bob", 600);
  ASSERT_TRUE(bob.is_ok());
  const std::string forged =
      bob->substr(0, bob->rfind('.')) + token->substr(token->rfind('.'));
  EXPECT_FALSE(auth.verify_user_token(forged).is_ok());
  EXPECT_FALSE(auth.mint_user_token("bad id with spaces", 60).is_ok());
  EXPECT_FALSE(auth.mint_user_token("alice", 0).is_ok());
}

// The attack: with the signing secret, a token for any user expiring in 2100 was
// accepted. The lifetime cap now holds at verification whatever the token claims.
TEST_F(AuthTest, TtlCapIsEnforcedAtVerificationNotOnlyAtMinting) {
  auto ring = keyring();
  Authenticator auth(*store_, clock_, ring, std::chrono::milliseconds(0));
  const std::string secret = ring->keys()->signing_key()->secret;
  const UnixSeconds now = clock_.now();
  const std::string year_2100 = forge(
      "fut2.t1.", "victim\n" + std::to_string(now) + "\n4102444800\nkey_x", secret);
  auto refused = auth.verify_user_token(year_2100);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("lifetime exceeds"), std::string::npos)
      << refused.status().message();
  // Backdating the issue time does not help: it is then too old to be within the cap...
  const std::string backdated = forge(
      "fut2.t1.", "victim\n" + std::to_string(4102444800 - 30 * kSecondsPerDay) +
                      "\n4102444800\nkey_x", secret);
  EXPECT_FALSE(auth.verify_user_token(backdated).is_ok());  // issued in the future
  // ...and exactly at the cap it is fine (the forger had the key: that is what rotation and
  // keeping the key out of the store are for).
  const std::string at_cap = forge(
      "fut2.t1.", "victim\n" + std::to_string(now) + "\n" +
                      std::to_string(now + 30 * kSecondsPerDay) + "\nkey_x", secret);
  EXPECT_TRUE(auth.verify_user_token(at_cap).is_ok());
  // Without the key nothing verifies, and the old format is refused outright.
  EXPECT_FALSE(auth.verify_user_token(forge("fut2.t1.", "victim\n" + std::to_string(now) + "\n" +
                                                            std::to_string(now + 60) + "\n",
                                            std::string(32, 'k')))
                   .is_ok());
  EXPECT_FALSE(auth.authenticate("Bearer " + forge("fut1.", "victim\n4102444800", secret)).is_ok());
}

TEST_F(AuthTest, RotationKeepsOldTokensUntilTheirKeyIsRetired) {
  auto ring = keyring();
  Authenticator auth(*store_, clock_, ring, std::chrono::milliseconds(0));
  auto old_token = auth.mint_user_token("alice", 600);
  ASSERT_TRUE(old_token.is_ok());
  auto rotated = ring->rotate_token_key(clock_);
  ASSERT_TRUE(rotated.is_ok());
  EXPECT_EQ(rotated->kid, "t2");
  auto new_token = auth.mint_user_token("alice", 600);
  ASSERT_TRUE(new_token.is_ok());
  EXPECT_EQ(new_token->rfind("fut2.t2.", 0), 0u);
  EXPECT_TRUE(auth.verify_user_token(*old_token).is_ok());  // t1 still verifies
  EXPECT_TRUE(auth.verify_user_token(*new_token).is_ok());
  ASSERT_TRUE(ring->retire_token_key("t1", clock_).is_ok());
  auto retired = auth.verify_user_token(*old_token);
  ASSERT_FALSE(retired.is_ok());
  EXPECT_NE(retired.status().message().find("retired"), std::string::npos);
  EXPECT_TRUE(auth.verify_user_token(*new_token).is_ok());
  // The only active key cannot be retired (nothing could sign).
  EXPECT_EQ(ring->retire_token_key("t2", clock_).code(), StatusCode::kFailedPrecondition);
  // Swapping the kid does not move a token to another key.
  std::string swapped = *new_token;
  swapped.replace(5, 2, "t1");
  EXPECT_FALSE(auth.verify_user_token(swapped).is_ok());
}

TEST_F(AuthTest, RevokingAUserRefusesTheirEarlierTokensOnly) {
  auto ring = keyring();
  Authenticator auth(*store_, clock_, ring, std::chrono::milliseconds(0));
  auto alice = auth.mint_user_token("alice", 600);
  auto bob = auth.mint_user_token("bob", 600);
  ASSERT_TRUE(alice.is_ok() && bob.is_ok());
  ASSERT_TRUE(auth.revoke_user_tokens("alice").is_ok());
  auto refused = auth.authenticate("Bearer " + *alice);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos);
  EXPECT_TRUE(auth.authenticate("Bearer " + *bob).is_ok());
  // Signing in again right away (same second) gives a working token.
  auto again = auth.mint_user_token("alice", 600);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(auth.authenticate("Bearer " + *again).is_ok());
  // Another process (a second replica) reads the revocation from the store.
  Authenticator replica(*store_, clock_, ring, std::chrono::milliseconds(0));
  EXPECT_FALSE(replica.verify_user_token(*alice).is_ok());
  EXPECT_TRUE(replica.verify_user_token(*again).is_ok());
}

TEST_F(AuthTest, KeyFileIsCreatedOwnerOnlyAndRefusedWhenReadableByOthers) {
  const std::string path = (dir_ / "f.db.keys").string();
  bool created = false;
  auto opened = Keyring::open(path, clock_, /*create=*/true, &created);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  EXPECT_TRUE(created);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_TRUE((*opened)->rotate_token_key(clock_).is_ok());
  // Reopened: the same keys, the rotation kept.
  auto reopened = Keyring::open(path, clock_, /*create=*/false, &created);
  ASSERT_TRUE(reopened.is_ok());
  EXPECT_FALSE(created);
  EXPECT_EQ((*reopened)->keys()->token_keys.size(), 2u);
  EXPECT_EQ((*reopened)->keys()->audit_secret, (*opened)->keys()->audit_secret);
  // A rotation by another process is picked up by reload_if_changed.
  ASSERT_TRUE((*reopened)->rotate_token_key(clock_).is_ok());
  auto reloaded = (*opened)->reload_if_changed();
  ASSERT_TRUE(reloaded.is_ok());
  EXPECT_TRUE(*reloaded);
  EXPECT_EQ((*opened)->keys()->signing_key()->kid, "t3");
  std::filesystem::permissions(path, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  auto refused = Keyring::open(path, clock_, /*create=*/false);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(Keyring::open((dir_ / "absent.keys").string(), clock_, false).status().code(),
            StatusCode::kNotFound);
}

TEST_F(AuthTest, KeyFileLocationPrecedence) {
  ::unsetenv("FULCRUM_KEY_FILE");
  EXPECT_EQ(*resolve_key_file("", "/data/f.db"), "/data/f.db.keys");
  EXPECT_EQ(resolve_key_file("", "postgres://db/x").status().field(), "key-file");
  ::setenv("FULCRUM_KEY_FILE", "/etc/fulcrum/env.keys", 1);
  EXPECT_EQ(*resolve_key_file("", "/data/f.db"), "/etc/fulcrum/env.keys");
  EXPECT_EQ(*resolve_key_file("", "postgres://db/x"), "/etc/fulcrum/env.keys");
  EXPECT_EQ(*resolve_key_file("/opt/flag.keys", "/data/f.db"), "/opt/flag.keys");  // flag wins
  ::unsetenv("FULCRUM_KEY_FILE");
  EXPECT_EQ(default_checkpoint_file("/data/f.db.keys"), "/data/f.db.audit-checkpoints");
}

// Stores written before the key file kept the signing secret in `documents`: the migration
// moves it out (retired: it was readable by anyone with the file) and erases it.
TEST_F(AuthTest, StoreKeptSecretIsMovedOutRetiredAndErased) {
  const std::string old_secret(32, 's');
  Document document;
  document.id = "user_token_key";
  document.kind = "server_secret";
  document.status = "active";
  document.body = "{\"key_hex\":\"" + to_hex(old_secret) + "\"}";
  document.created_at = document.updated_at = clock_.now() - 100;
  ASSERT_TRUE(store_->put_document(document).is_ok());
  const std::string path = (dir_ / "f.db.keys").string();
  auto ring = Keyring::open(path, clock_, /*create=*/true);
  ASSERT_TRUE(ring.is_ok());
  std::vector<std::string> notes;
  ASSERT_TRUE(migrate_store_to_key_file(*store_, **ring, clock_, &notes).is_ok());
  EXPECT_EQ(notes.size(), 1u);
  auto gone = store_->get_document("server_secret", "user_token_key");
  ASSERT_TRUE(gone.is_ok());
  EXPECT_FALSE(gone->has_value());
  const TokenKey* moved = (*ring)->keys()->find_token_key("t0");
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->secret, old_secret);
  EXPECT_TRUE(moved->retired_at.has_value());
  // The secret's bytes are gone from the database files too (secure delete + checkpoint).
  store_.reset();
  for (const char* suffix : {"", "-wal"}) {
    std::ifstream in((dir_ / "f.db").string() + suffix, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(to_hex(old_secret)), std::string::npos) << suffix;
  }
  auto reopened = open_store((dir_ / "f.db").string());
  ASSERT_TRUE(reopened.is_ok());
  store_ = std::move(*reopened);
  // A token forged with the old secret (either format) is refused.
  Authenticator auth(*store_, clock_, *ring, std::chrono::milliseconds(0));
  const UnixSeconds now = clock_.now();
  EXPECT_FALSE(auth.authenticate("Bearer " + forge("fut2.t0.", "victim\n" + std::to_string(now) +
                                                                    "\n" + std::to_string(now + 60) + "\n",
                                                   old_secret))
                   .is_ok());
  EXPECT_FALSE(auth.authenticate("Bearer " + forge("fut1.", "victim\n4102444800", old_secret)).is_ok());
  // Running the migration again changes nothing.
  notes.clear();
  ASSERT_TRUE(migrate_store_to_key_file(*store_, **ring, clock_, &notes).is_ok());
  EXPECT_TRUE(notes.empty());
}

TEST_F(AuthTest, StoreFilesAreCreatedOwnerOnly) {
  namespace fs = std::filesystem;
  const fs::path db = dir_ / "fresh.db";
  {
    auto opened = open_store(db.string());
    ASSERT_TRUE(opened.is_ok());
    ASSERT_TRUE((*opened)->put_api_key({"k", "h", "admin", "", 1, std::nullopt}).is_ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      const fs::path file = db.string() + suffix;
      ASSERT_TRUE(fs::exists(file)) << file;
      EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
                fs::perms::owner_read | fs::perms::owner_write)
          << file;
    }
  }
  // An existing world-readable file is tightened when opened.
  fs::permissions(db, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  ASSERT_TRUE(open_store(db.string()).is_ok());
  EXPECT_EQ(fs::status(db).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace
}  // namespace fulcrum::api
