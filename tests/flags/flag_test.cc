// Flag validation (every error names its field) and the store-backed operations
// (versions, optimistic concurrency, nothing stored on bad input), on a real SQLite file.
#include "flags/flag.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "flags/service.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;

json valid_flag() {
  return json::parse(R"({
    "key": "new_checkout", "value_type": "boolean", "default_value": false,
    "description": "New checkout flow",
    "rules": [
      {"id": "staff", "type": "force", "condition": {"segment": "staff"}, "value": true},
      {"id": "rollout", "type": "force", "value": true, "coverage": 0.2},
      {"id": "exp", "type": "experiment", "key": "checkout-exp",
       "variations": [{"name": "control", "value": false}, {"name": "new", "value": true}],
       "weights": [0.3, 0.7], "coverage": 0.5,
       "namespace": {"id": "checkout", "start": 0, "end": 0.5}}]})");
}

std::string error_field(const json& request) {
  auto parsed = parse_flag(request);
  EXPECT_FALSE(parsed.is_ok()) << request.dump();
  return parsed.is_ok() ? std::string("<accepted>") : parsed.status().field();
}

TEST(FlagParse, AcceptsAValidFlagAndRoundTrips) {
  auto flag = parse_flag(valid_flag());
  ASSERT_TRUE(flag.is_ok()) << flag.status().to_string();
  EXPECT_EQ(flag->rules.size(), 3u);
  EXPECT_EQ(flag->rules[2].weights, (std::vector<double>{0.3, 0.7}));
  json again = to_json(*flag);
  for (const char* field : {"version", "created_at", "updated_at", "updated_by"}) again.erase(field);
  auto reparsed = parse_flag(again);
  ASSERT_TRUE(reparsed.is_ok()) << reparsed.status().to_string();
  EXPECT_EQ(to_json(*reparsed), to_json(*flag));
}

TEST(FlagParse, ErrorsNameTheField) {
  json bad = valid_flag();
  bad["key"] = "has space";
  EXPECT_EQ(error_field(bad), "key");
  bad = valid_flag();
  bad["value_type"] = "bool";
  EXPECT_EQ(error_field(bad), "value_type");
  bad = valid_flag();
  bad["default_value"] = "false";  // a string for a boolean flag
  EXPECT_EQ(error_field(bad), "default_value");
  bad = valid_flag();
  bad["rules"][0]["condition"] = {{"app_version", {{"$vgtt", "5.0.0"}}}};
  EXPECT_EQ(error_field(bad), "rules[0].condition.app_version.$vgtt");
  bad = valid_flag();
  bad["rules"][0]["value"] = 1;
  EXPECT_EQ(error_field(bad), "rules[0].value");
  bad = valid_flag();
  bad["rules"][1]["coverage"] = 1.5;
  EXPECT_EQ(error_field(bad), "rules[1].coverage");
  bad = valid_flag();
  bad["rules"][2]["weights"] = {0.5, 0.3, 0.2};  // three weights, two variations
  EXPECT_EQ(error_field(bad), "rules[2].weights");
  bad = valid_flag();
  bad["rules"][2]["weights"] = {0.5, 0.6};
  EXPECT_EQ(error_field(bad), "rules[2].weights");
  bad = valid_flag();
  bad["rules"][2]["variations"][1]["name"] = "control";
  EXPECT_EQ(error_field(bad), "rules[2].variations[1].name");
  bad = valid_flag();
  bad["rules"][2]["variations"][1]["value"] = "yes";
  EXPECT_EQ(error_field(bad), "rules[2].variations[1].value");
  bad = valid_flag();
  bad["rules"][2]["namespace"]["end"] = 1.2;
  EXPECT_EQ(error_field(bad), "rules[2].namespace.end");
  bad = valid_flag();
  bad["rules"][1]["type"] = "rollout";
  EXPECT_EQ(error_field(bad), "rules[1].type");
  bad = valid_flag();
  bad["rules"][1]["colour"] = "red";
  EXPECT_EQ(error_field(bad), "rules[1].colour");
  bad = valid_flag();
  bad["rules"][1]["id"] = "staff";
  EXPECT_EQ(error_field(bad), "rules[1].id");
  bad = valid_flag();
  bad["version"] = 3;
  EXPECT_EQ(error_field(bad), "version");
  bad = valid_flag();
  bad["owner"] = "me";
  EXPECT_EQ(error_field(bad), "owner");
}

TEST(FlagParse, ValueTypesAreChecked) {
  EXPECT_TRUE(value_matches(ValueType::kNumber, json(2.5)));
  EXPECT_FALSE(value_matches(ValueType::kNumber, json("2.5")));
  EXPECT_TRUE(value_matches(ValueType::kJson, json::object()));
  EXPECT_TRUE(value_matches(ValueType::kJson, json::array()));
  EXPECT_FALSE(value_matches(ValueType::kJson, json(1)));
  EXPECT_TRUE(value_matches(ValueType::kString, json("x")));
  EXPECT_FALSE(value_matches(ValueType::kBoolean, json(nullptr)));
}

class FlagStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fulcrum_flags_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = open_store((dir_ / "store.db").string()).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{1'800'000'000};
};

TEST_F(FlagStoreTest, CreateUpdateKillArchiveBumpVersions) {
  auto created = create_flag(*store_, clock_, valid_flag(), "key_admin");
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  EXPECT_EQ(created->version, 1);
  EXPECT_EQ(created->updated_by, "key_admin");
  auto again = create_flag(*store_, clock_, valid_flag(), "key_admin");
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);

  clock_.advance(10);
  auto updated = update_flag(*store_, clock_, "new_checkout", {{"default_value", true}}, "cli");
  ASSERT_TRUE(updated.is_ok()) << updated.status().to_string();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->default_value, true);
  EXPECT_EQ(updated->rules.size(), 3u);  // untouched fields kept
  EXPECT_EQ(updated->created_at, created->created_at);
  EXPECT_EQ(updated->updated_at, created->updated_at + 10);

  auto stale = update_flag(*store_, clock_, "new_checkout",
                           {{"default_value", false}, {"version", 1}}, "cli");
  ASSERT_FALSE(stale.is_ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kFailedPrecondition);

  auto killed = set_flag_killed(*store_, clock_, "new_checkout", true, "cli");
  ASSERT_TRUE(killed.is_ok());
  EXPECT_TRUE(killed->killed);
  EXPECT_EQ(killed->off_value(), false);
  auto archived = set_flag_archived(*store_, clock_, "new_checkout", true, "cli");
  ASSERT_TRUE(archived.is_ok());
  EXPECT_EQ(archived->version, 4);
  EXPECT_TRUE(list_flags(*store_)->empty());
  EXPECT_EQ(list_flags(*store_, true)->size(), 1u);
  auto doc = store_->get_document(kFlagDocumentKind, "new_checkout");
  ASSERT_TRUE(doc.is_ok() && doc->has_value());
  EXPECT_EQ((*doc)->status, "archived");
}

TEST_F(FlagStoreTest, BadInputStoresNothing) {
  ASSERT_TRUE(create_flag(*store_, clock_, valid_flag(), "a").is_ok());
  auto before = store_->get_document(kFlagDocumentKind, "new_checkout");
  json bad_rules = valid_flag()["rules"];
  bad_rules[0]["condition"] = {{"tier", {{"$inn", json::array({"free"})}}}};
  auto rejected = update_flag(*store_, clock_, "new_checkout", {{"rules", bad_rules}}, "a");
  ASSERT_FALSE(rejected.is_ok());
  EXPECT_EQ(rejected.status().field(), "rules[0].condition.tier.$inn");
  auto renamed = update_flag(*store_, clock_, "new_checkout", {{"key", "other"}}, "a");
  ASSERT_FALSE(renamed.is_ok());
  EXPECT_EQ(renamed.status().field(), "key");
  auto after = store_->get_document(kFlagDocumentKind, "new_checkout");
  EXPECT_EQ((*after)->version, (*before)->version);
  EXPECT_EQ((*after)->body, (*before)->body);
  json bad = valid_flag();
  bad["key"] = "second";
  bad["rules"][2]["weights"] = {1.0};
  EXPECT_FALSE(create_flag(*store_, clock_, bad, "a").is_ok());
  EXPECT_FALSE(store_->get_document(kFlagDocumentKind, "second")->has_value());
}

}  // namespace
}  // namespace fulcrum::flags
