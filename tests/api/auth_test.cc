// API keys and user tokens against a real SQLite store.
#include "api/auth.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

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

  Authenticator auth(*store_, clock_, random_token_secret(), std::chrono::milliseconds(0));
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
  Authenticator auth(*store_, clock_, random_token_secret(), std::chrono::milliseconds(100));
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

  Authenticator auth(*store_, clock_, random_token_secret(), std::chrono::milliseconds(0));
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
  Authenticator auth(*store_, clock_, random_token_secret(), std::chrono::milliseconds(0));
  auto token = auth.mint_user_token("user-42", 600);
  ASSERT_TRUE(token.is_ok());
  auto context = auth.authenticate("Bearer " + *token);
  ASSERT_TRUE(context.is_ok());
  EXPECT_EQ(context->role, Role::kUser);
  EXPECT_EQ(context->user_id, "user-42");
  EXPECT_EQ(context->actor, "user:user-42");

  clock_.advance(599);
  EXPECT_TRUE(auth.verify_user_token(*token).is_ok());
  clock_.advance(1);
  EXPECT_EQ(auth.verify_user_token(*token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, TamperedOrForeignTokensAreRejected) {
  Authenticator auth(*store_, clock_, random_token_secret(), std::chrono::milliseconds(0));
  Authenticator other(*store_, clock_, random_token_secret(), std::chrono::milliseconds(0));
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

}  // namespace
}  // namespace fulcrum::api
