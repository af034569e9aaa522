#include "store/event_codec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "store/store.h"

namespace fulcrum {
namespace {

DecodedChunk decode(std::string_view text, EventFormat format = EventFormat::kNdjson) {
  auto result = decode_events(text, format);
  EXPECT_TRUE(result.is_ok()) << result.status().to_string();
  return result.is_ok() ? std::move(result).value() : DecodedChunk{};
}

constexpr UnixSeconds kJan1 = 1704067200;  // 2024-01-01T00:00:00Z

TEST(EventCodecTest, DecodesEveryRecordTypeFromNdjson) {
  const std::string text =
      R"({"type":"user","user_id":"u1","tier":"plus","signup_at":"2024-01-01T00:00:00Z","country":"GB","app_version":"5.2.1","attributes":{"segment":"student","age":23,"vip":true}})"
      "\n"
      R"({"type":"feature","name":"budgets","required_tier":"premium","monthly_maintenance_cost":"1200.50","monthly_revenue_value_minor":99,"category":"insights"})"
      "\n"
      R"({"type":"feature_usage","user_id":"u1","feature":"budgets","at":1704067200,"count":3})"
      "\n"
      R"({"at":"2024-01-01T00:01:00Z","type":"session","user_id":"u1","duration_seconds":95})"
      "\n"
      R"({"type":"subscription_change","user_id":"u1","at":"2024-01-02","kind":"upgrade","from_tier":"free","to_tier":"plus"})"
      "\n"
      R"({"type":"payment","user_id":"u1","at":1704067200,"succeeded":false,"amount":9.99})"
      "\n"
      R"({"type":"payment","user_id":"u1","at":1704067200,"amount_minor":1999})"
      "\n"
      R"({"type":"paywall_hit","user_id":"u1","feature":"budgets","at":1704067200})"
      "\n"
      R"({"type":"exposure","experiment_id":"exp1","user_id":"u1","variant":"control","at":1704067200})"
      "\n"
      R"({"type":"metric","user_id":"u1","metric":"revenue_per_user","value":12.5,"at":1704067200})"
      "\n"
      R"({"type":"metric","user_id":"u1","metric":"conversion_rate","at":1704067200})";
  DecodedChunk chunk = decode(text);
  ASSERT_TRUE(chunk.ok()) << chunk.errors.front().to_string();
  EXPECT_EQ(chunk.records, 11);
  EXPECT_EQ(chunk.first_line, 1);
  EXPECT_EQ(chunk.last_line, 11);
  const EventBatch& batch = chunk.batch;
  ASSERT_EQ(batch.users.size(), 1u);
  EXPECT_EQ(batch.users[0].user_id, "u1");
  EXPECT_EQ(batch.users[0].tier, Tier::kPlus);
  EXPECT_EQ(batch.users[0].signup_at, kJan1);
  EXPECT_EQ(batch.users[0].country, "GB");
  EXPECT_EQ(batch.users[0].app_version, "5.2.1");
  EXPECT_EQ(batch.users[0].attributes.at("segment"), "student");
  EXPECT_EQ(batch.users[0].attributes.at("age"), "23");
  EXPECT_EQ(batch.users[0].attributes.at("vip"), "true");
  ASSERT_EQ(batch.features.size(), 1u);
  EXPECT_EQ(batch.features[0].required_tier, Tier::kPremium);
  EXPECT_EQ(batch.features[0].monthly_maintenance_cost_minor, 120050);
  EXPECT_EQ(batch.features[0].monthly_revenue_value_minor, 99);
  EXPECT_EQ(batch.features[0].category, "insights");
  ASSERT_EQ(batch.feature_usage.size(), 1u);
  EXPECT_EQ(batch.feature_usage[0].count, 3);
  EXPECT_EQ(batch.feature_usage[0].at, kJan1);
  ASSERT_EQ(batch.sessions.size(), 1u);
  EXPECT_EQ(batch.sessions[0].at, kJan1 + 60);
  EXPECT_EQ(batch.sessions[0].duration_seconds, 95);
  ASSERT_EQ(batch.subscription_changes.size(), 1u);
  EXPECT_EQ(batch.subscription_changes[0].at, kJan1 + kSecondsPerDay);
  EXPECT_EQ(batch.subscription_changes[0].kind, SubscriptionChangeKind::kUpgrade);
  EXPECT_EQ(batch.subscription_changes[0].to_tier, Tier::kPlus);
  ASSERT_EQ(batch.payments.size(), 2u);
  EXPECT_FALSE(batch.payments[0].succeeded);
  EXPECT_EQ(batch.payments[0].amount_minor, 999);
  EXPECT_TRUE(batch.payments[1].succeeded);
  EXPECT_EQ(batch.payments[1].amount_minor, 1999);
  ASSERT_EQ(batch.paywall_hits.size(), 1u);
  ASSERT_EQ(batch.exposures.size(), 1u);
  EXPECT_EQ(batch.exposures[0].variant, "control");
  ASSERT_EQ(batch.metric_events.size(), 2u);
  EXPECT_DOUBLE_EQ(batch.metric_events[0].value, 12.5);
  EXPECT_DOUBLE_EQ(batch.metric_events[1].value, 1.0);
}

TEST(EventCodecTest, ReportsBadLinesWithLineNumberAndField) {
  const std::string text =
      R"({"type":"session","user_id":"u1","at":1704067200})"
      "\n"
      R"({"type":"session","user_id":"u1","at":"yesterday"})"
      "\n"
      "\n"  // blank lines are skipped but counted
      R"({"type":"click","user_id":"u1","at":1704067200})"
      "\n"
      R"({"type":"session","user_id":"u1",)"
      "\n"
      R"({"type":"payment","user_id":"u1","at":1704067200,"amount":"1.234"})"
      "\n"
      R"({"type":"feature_usage","user_id":"u1","at":1704067200})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"colour":"red"})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"feature":"budgets"})"
      "\n"
      R"({"type":"session","user_id":"u1","user_id":"u2","at":1704067200})"
      "\n"
      R"([1,2])"
      "\n"
      R"({"type":"feature_usage","user_id":"u1","feature":"x","at":1,"count":0})"
      "\n"
      R"({"type":"subscription_change","user_id":"u1","at":1,"kind":"upgrade","from_tier":"plus","to_tier":"free"})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200})";
  DecodedChunk chunk = decode(text);
  EXPECT_EQ(chunk.records, 13);
  EXPECT_EQ(chunk.invalid_records, 11);
  EXPECT_EQ(chunk.batch.sessions.size(), 2u);
  struct Expected {
    std::int64_t line;
    std::string field;
  };
  const std::vector<Expected> expected = {
      {2, "at"},      {4, "type"},     {5, ""},  {6, "amount"}, {7, "feature"},  {8, "colour"},
      {9, "feature"}, {10, "user_id"}, {11, ""}, {12, "count"}, {13, "to_tier"},
  };
  ASSERT_EQ(chunk.errors.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(chunk.errors[i].line, expected[i].line) << chunk.errors[i].to_string();
    EXPECT_EQ(chunk.errors[i].field, expected[i].field) << chunk.errors[i].to_string();
    EXPECT_FALSE(chunk.errors[i].reason.empty());
  }
  EXPECT_EQ(chunk.errors[0].to_string().substr(0, 20), "line 2: field 'at': ");
  EXPECT_NE(chunk.errors[1].reason.find("click"), std::string::npos);
}

TEST(EventCodecTest, RejectsTrailingContentAfterTheObject) {
  DecodedChunk chunk = decode(R"({"type":"session","user_id":"u1","at":1} {"x":1})");
  EXPECT_EQ(chunk.invalid_records, 1);
  EXPECT_TRUE(chunk.batch.sessions.empty());
}

TEST(EventCodecTest, CsvFollowsRfc4180Quoting) {
  const std::string text =
      "type,user_id,feature,at,count,tier,country,attributes.segment\r\n"
      "user,\"u,1\",,,,plus,GB,\"student \"\"gold\"\"\"\r\n"
      "user,u2,,,,,,\"two\nlines\"\r\n"
      "feature_usage,u2,budgets,2024-01-01T00:00:00Z,2,,,\r\n"
      "feature_usage,u2,budgets,2024-01-01T00:00:00Z,,,,,\r\n"
      "feature_usage,u2,\"bud\"gets,1,,,,\r\n"
      "session,u2,,1704067200,,,,\n";
  DecodedChunk chunk = decode(text, EventFormat::kCsv);
  EXPECT_EQ(chunk.records, 6);
  ASSERT_EQ(chunk.batch.users.size(), 2u);
  EXPECT_EQ(chunk.batch.users[0].user_id, "u,1");
  EXPECT_EQ(chunk.batch.users[0].tier, Tier::kPlus);
  EXPECT_EQ(chunk.batch.users[0].attributes.at("segment"), "student \"gold\"");
  EXPECT_EQ(chunk.batch.users[1].attributes.at("segment"), "two\nlines");
  EXPECT_EQ(chunk.batch.users[1].tier, Tier::kFree);
  EXPECT_TRUE(chunk.batch.users[1].country.empty());
  ASSERT_EQ(chunk.batch.feature_usage.size(), 1u);
  EXPECT_EQ(chunk.batch.feature_usage[0].count, 2);
  EXPECT_EQ(chunk.batch.feature_usage[0].at, kJan1);
  ASSERT_EQ(chunk.batch.sessions.size(), 1u);
  // The quoted line break makes record 3 span lines 3-4, so later records shift by one.
  ASSERT_EQ(chunk.errors.size(), 2u);
  EXPECT_EQ(chunk.errors[0].line, 6);
  EXPECT_NE(chunk.errors[0].reason.find("expected 8 columns, found 9"), std::string::npos);
  EXPECT_EQ(chunk.errors[1].line, 7);
  EXPECT_NE(chunk.errors[1].reason.find("closing quote"), std::string::npos);
  EXPECT_EQ(chunk.last_line, 8);
}

TEST(EventCodecTest, CsvFieldRulesMatchNdjson) {
  const std::string text =
      "type,user_id,at,amount,amount_minor,succeeded,feature\n"
      "payment,u1,2024-01-01,12.30,,false,\n"
      "payment,u1,2024-01-01,1.00,100,,\n"
      "payment,u1,2024-01-01,,,,\n"
      "payment,u1,2024-01-01,5,,maybe,\n"
      "payment,u1,2024-01-01,5,,,budgets\n";
  DecodedChunk chunk = decode(text, EventFormat::kCsv);
  ASSERT_EQ(chunk.batch.payments.size(), 1u);
  EXPECT_EQ(chunk.batch.payments[0].amount_minor, 1230);
  EXPECT_FALSE(chunk.batch.payments[0].succeeded);
  ASSERT_EQ(chunk.errors.size(), 4u);
  EXPECT_EQ(chunk.errors[0].field, "amount_minor");  // both given
  EXPECT_EQ(chunk.errors[1].field, "amount");        // neither given
  EXPECT_EQ(chunk.errors[2].field, "succeeded");
  EXPECT_EQ(chunk.errors[3].field, "feature");  // not a payment field
  EXPECT_EQ(chunk.errors[3].line, 6);
}

TEST(EventCodecTest, CsvUnterminatedQuoteIsReported) {
  DecodedChunk chunk =
      decode("type,user_id,at\nsession,u1,1\nsession,\"u2,2\nsession,u3,3\n", EventFormat::kCsv);
  EXPECT_EQ(chunk.batch.sessions.size(), 1u);
  ASSERT_EQ(chunk.errors.size(), 1u);
  EXPECT_EQ(chunk.errors[0].line, 3);
  EXPECT_NE(chunk.errors[0].reason.find("unterminated"), std::string::npos);
}

TEST(EventCodecTest, BadCsvHeaderFailsTheWholeInput) {
  auto unknown = decode_events("type,user_id,colour\n", EventFormat::kCsv);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().field(), "colour");
  auto no_type = decode_events("user_id,at\nu1,1\n", EventFormat::kCsv);
  ASSERT_FALSE(no_type.is_ok());
  EXPECT_EQ(no_type.status().field(), "type");
  auto duplicate = decode_events("type,at,at\n", EventFormat::kCsv);
  ASSERT_FALSE(duplicate.is_ok());
  EXPECT_FALSE(decode_events("", EventFormat::kCsv).is_ok());
}

// Large enough to cross many of the reader's refills and regrowths, with a small chunk size: every record comes out exactly once, with its own line number.
TEST(EventCodecTest, StreamsLargeInputInChunksWithContinuousLineNumbers) {
  constexpr int kLines = 60'000;
  std::string text;
  for (int i = 0; i < kLines; ++i) {
    text += R"({"type":"feature_usage","user_id":"user_)" + std::to_string(i) +
            R"(","feature":"budgets","at":)" + std::to_string(kJan1 + i) +
            ",\"count\":" + std::to_string(i % 7 == 3 ? 0 : 1 + i % 5) + "}\n";
  }
  std::istringstream in(text);
  EventReader reader(in, EventFormat::kNdjson, 7'000);
  DecodedChunk chunk;
  std::int64_t records = 0, valid = 0, chunks = 0, expected_first_line = 1;
  std::int64_t invalid = 0;
  while (true) {
    auto more = reader.next(chunk);
    ASSERT_TRUE(more.is_ok());
    if (!*more) break;
    ++chunks;
    EXPECT_EQ(chunk.first_line, expected_first_line);
    expected_first_line = chunk.last_line + 1;
    records += chunk.records;
    invalid += chunk.invalid_records;
    for (const auto& error : chunk.errors) {
      EXPECT_EQ((error.line - 1) % 7, 3);
      EXPECT_EQ(error.field, "count");
    }
    for (const auto& event : chunk.batch.feature_usage) {
      const std::int64_t i = event.at - kJan1;
      EXPECT_EQ(event.user_id, "user_" + std::to_string(i));
      EXPECT_EQ(event.count, 1 + i % 5);
      ++valid;
    }
  }
  EXPECT_EQ(chunks, (kLines + 6'999) / 7'000);
  EXPECT_EQ(records, kLines);
  EXPECT_EQ(invalid, kLines / 7 + (kLines % 7 > 3 ? 1 : 0));
  EXPECT_EQ(valid + invalid, kLines);
}

// The stream reader starts with a small buffer: a record several times longer is still read
// whole (the buffer grows to it), between two ordinary records.
TEST(EventCodecTest, StreamsARecordLongerThanTheReadersFirstBuffer) {
  const std::string record = R"({"type":"feature_usage","user_id":"u2","feature":"budgets",)" +
                             std::string(1'500'000, ' ') + R"("at":)" +
                             std::to_string(kJan1 + 1) + "}";
  std::string text = R"({"type":"feature_usage","user_id":"u1","feature":"budgets","at":)" +
                     std::to_string(kJan1) + "}\n" + record + "\n" +
                     R"({"type":"feature_usage","user_id":"u3","feature":"budgets","at":)" +
                     std::to_string(kJan1 + 2) + "}\n";
  std::istringstream in(text);
  EventReader reader(in, EventFormat::kNdjson, 10);
  DecodedChunk chunk;
  auto more = reader.next(chunk);
  ASSERT_TRUE(more.is_ok()) << more.status().to_string();
  ASSERT_TRUE(*more);
  EXPECT_EQ(chunk.records, 3);
  EXPECT_EQ(chunk.invalid_records, 0);
  ASSERT_EQ(chunk.batch.feature_usage.size(), 3u);
  EXPECT_EQ(chunk.batch.feature_usage[1].user_id, "u2");
  EXPECT_EQ(chunk.batch.feature_usage[2].at, kJan1 + 2);
}

class EventCodecStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_codec_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto store = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }
  std::int64_t stored_sessions() {
    std::int64_t count = 0;
    EXPECT_TRUE(store_->scan_sessions({}, [&](const SessionEvent&) { ++count; }).is_ok());
    return count;
  }

  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
};

constexpr std::string_view kMixedBatch =
    R"({"type":"user","user_id":"u1","tier":"free"})"
    "\n"
    R"({"type":"session","user_id":"u1","at":1704067200,"duration_seconds":30})"
    "\n"
    R"({"type":"session","user_id":"u1","at":"not a time"})"
    "\n"
    R"({"type":"session","user_id":"u1","at":1704067300,"duration_seconds":40})"
    "\n";

TEST_F(EventCodecStoreTest, StrictPolicyStoresNothingOfABadChunk) {
  DecodedChunk chunk = decode(kMixedBatch);
  auto stored = ingest_chunk(*store_, chunk, InvalidRecordPolicy::kRejectChunk);
  ASSERT_FALSE(stored.is_ok());
  EXPECT_EQ(stored.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(stored.status().field(), "at");
  EXPECT_NE(stored.status().message().find("line 3"), std::string::npos);
  EXPECT_EQ(stored_sessions(), 0);
  EXPECT_EQ(*store_->count_users(), 0);
}

TEST_F(EventCodecStoreTest, SkipInvalidStoresTheValidRecords) {
  DecodedChunk chunk = decode(kMixedBatch);
  auto stored = ingest_chunk(*store_, chunk, InvalidRecordPolicy::kSkipInvalid);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  EXPECT_EQ(stored->stored, 3);
  EXPECT_EQ(stored_sessions(), 2);
  EXPECT_EQ(*store_->count_users(), 1);
}

TEST_F(EventCodecStoreTest, ValidChunkIsStoredWhole) {
  DecodedChunk chunk = decode(
      "type,user_id,at,duration_seconds,tier\n"
      "user,u1,,,premium\n"
      "session,u1,1704067200,30,\n",
      EventFormat::kCsv);
  auto stored = ingest_chunk(*store_, chunk, InvalidRecordPolicy::kRejectChunk);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  EXPECT_EQ(stored->stored, 2);
  auto user = store_->get_user("u1");
  ASSERT_TRUE(user.is_ok());
  ASSERT_TRUE(user->has_value());
  EXPECT_EQ((*user)->tier, Tier::kPremium);
  EXPECT_EQ(stored_sessions(), 1);
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// Hostile input (issue 12): plausible-time bounds and the exposure check come from the
// caller; nesting, invalid UTF-8 and oversized attributes are invalid records named by
// field, in the codec's own words.
TEST(EventCodecHostileInputTest, TimeBoundsMakeImplausibleTimesInvalidRecords) {
  const DecodeOptions options = DecodeOptions::plausible_times(kJan1);
  auto chunk = decode_events(
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":946684800}\n"        // 2000-01-01: ok
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":946684799}\n"        // one second before
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":-9000000000000000000}\n"
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":\"9999-12-31T00:00:00Z\"}\n"
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704153600}\n"       // now + 1 day: ok
      "{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704153601}\n"       // just after
      "{\"type\":\"user\",\"user_id\":\"u2\",\"signup_at\":\"1970-01-01T00:00:00Z\"}\n",
      EventFormat::kNdjson, options);
  ASSERT_TRUE(chunk.is_ok());
  EXPECT_EQ(chunk->batch.sessions.size(), 2u);
  ASSERT_EQ(chunk->invalid_records, 5);
  std::vector<std::int64_t> lines;
  for (const RecordError& error : chunk->errors) {
    lines.push_back(error.line);
    EXPECT_TRUE(error.field == "at" || error.field == "signup_at") << error.to_string();
  }
  EXPECT_EQ(lines, (std::vector<std::int64_t>{2, 3, 4, 6, 7}));
  // Without options (unit tests, tools) times are not bounded.
  EXPECT_EQ(decode("{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1}\n").invalid_records, 0);
}

TEST(EventCodecHostileInputTest, ExposureCheckRejectsNamedField) {
  DecodeOptions options;
  options.check_exposure = [](const ExposureEvent& exposure)
      -> std::optional<std::pair<std::string, std::string>> {
    if (exposure.variant != "control") return std::pair<std::string, std::string>{"variant", "no"};
    return std::nullopt;
  };
  auto chunk = decode_events(
      "{\"type\":\"exposure\",\"experiment_id\":\"e\",\"user_id\":\"u\",\"variant\":\"control\","
      "\"at\":1}\n"
      "{\"type\":\"exposure\",\"experiment_id\":\"e\",\"user_id\":\"u\",\"variant\":\"x\",\"at\":1}\n",
      EventFormat::kNdjson, options);
  ASSERT_TRUE(chunk.is_ok());
  EXPECT_EQ(chunk->batch.exposures.size(), 1u);
  ASSERT_EQ(chunk->errors.size(), 1u);
  EXPECT_EQ(chunk->errors[0].field, "variant");
  EXPECT_EQ(chunk->errors[0].line, 2);
}

TEST(EventCodecHostileInputTest, NestingUtf8AndAttributeLimitsAreOwnWords) {
  const std::string deep = "{\"type\":\"user\",\"user_id\":\"u1\",\"attributes\":{\"a\":" +
                           std::string(100'000, '[') + "}}\n";
  DecodedChunk nested = decode(deep);
  ASSERT_EQ(nested.invalid_records, 1);
  EXPECT_EQ(nested.errors[0].reason.find("simdjson"), std::string::npos);

  DecodedChunk utf8 = decode("{\"type\":\"session\",\"user_id\":\"\xff\",\"at\":1}\n");
  ASSERT_EQ(utf8.invalid_records, 1);
  EXPECT_EQ(utf8.errors[0].reason, "invalid UTF-8");

  DecodedChunk csv = decode("type,user_id,attributes.segment\nuser,u1,st\xff\n", EventFormat::kCsv);
  ASSERT_EQ(csv.invalid_records, 1);
  EXPECT_EQ(csv.errors[0].field, "attributes.segment");
  EXPECT_FALSE(decode_events("type,\xff\n", EventFormat::kCsv).is_ok());

  std::string many = "{\"type\":\"user\",\"user_id\":\"u1\",\"attributes\":{";
  for (int i = 0; i < 101; ++i) many += (i ? ",\"a" : "\"a") + std::to_string(i) + "\":1";
  many += "}}\n";
  DecodedChunk too_many = decode(many);
  ASSERT_EQ(too_many.invalid_records, 1);
  EXPECT_EQ(too_many.errors[0].field, "attributes");
  DecodedChunk long_value = decode("{\"type\":\"user\",\"user_id\":\"u1\",\"attributes\":{\"a\":\"" +
                                   std::string(1025, 'v') + "\"}}\n");
  ASSERT_EQ(long_value.invalid_records, 1);
  EXPECT_EQ(long_value.errors[0].field, "attributes.a");
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// Event identity (issue 18): an optional event_id on every record type, in both formats.
TEST(EventCodecIdentityTest, EveryRecordTypeTakesAnEventId) {
  const std::string text =
      "\xEF\xBB\xBF"  // a byte-order mark first, as some editors write it
      R"({"type":"user","user_id":"u1","event_id":"e-user"})"
      "\n"
      R"({"type":"feature","name":"budgets","event_id":"e-feature"})"
      "\n"
      R"({"type":"feature_usage","user_id":"u1","feature":"budgets","at":1704067200,"event_id":"e-usage"})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":"e-session"})"
      "\n"
      R"({"type":"subscription_change","user_id":"u1","at":1704067200,"kind":"upgrade","from_tier":"free","to_tier":"plus","event_id":"e-change"})"
      "\n"
      R"({"type":"payment","user_id":"u1","at":1704067200,"amount":"1.00","event_id":"e-payment"})"
      "\n"
      R"({"type":"paywall_hit","user_id":"u1","feature":"budgets","at":1704067200,"event_id":"e-paywall"})"
      "\n"
      R"({"type":"exposure","experiment_id":"x","user_id":"u1","variant":"a","at":1704067200,"event_id":"e-exposure"})"
      "\n"
      R"({"type":"metric","user_id":"u1","metric":"m","at":1704067200,"event_id":"e-metric"})"
      "\n"
      R"({"type":"metric","user_id":"u1","metric":"m","at":1704067200,"event_id":null})"
      "\n";
  DecodedChunk chunk = decode(text);
  ASSERT_TRUE(chunk.ok()) << chunk.errors.front().to_string();
  const EventBatch& b = chunk.batch;
  EXPECT_EQ(b.users.at(0).event_id, "e-user");
  EXPECT_EQ(b.features.at(0).event_id, "e-feature");
  EXPECT_EQ(b.feature_usage.at(0).event_id, "e-usage");
  EXPECT_EQ(b.sessions.at(0).event_id, "e-session");
  EXPECT_EQ(b.subscription_changes.at(0).event_id, "e-change");
  EXPECT_EQ(b.payments.at(0).event_id, "e-payment");
  EXPECT_EQ(b.paywall_hits.at(0).event_id, "e-paywall");
  EXPECT_EQ(b.exposures.at(0).event_id, "e-exposure");
  EXPECT_EQ(b.metric_events.at(0).event_id, "e-metric");
  EXPECT_EQ(b.metric_events.at(1).event_id, "");  // null: no identity

  DecodedChunk csv = decode(
      "\xEF\xBB\xBFtype,user_id,at,event_id\n"
      "session,u1,1704067200,e-1\n"
      "session,u1,1704067200,\n",
      EventFormat::kCsv);
  ASSERT_TRUE(csv.ok()) << csv.errors.front().to_string();
  ASSERT_EQ(csv.batch.sessions.size(), 2u);
  EXPECT_EQ(csv.batch.sessions[0].event_id, "e-1");
  EXPECT_EQ(csv.batch.sessions[1].event_id, "");  // an empty cell is absent
}

TEST(EventCodecIdentityTest, ABadEventIdIsAnInvalidRecordNamingTheField) {
  const std::string long_id(257, 'x');
  const std::string text =
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":17})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":""})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":")" +
      long_id +
      R"("})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":true})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":{"a":1}})"
      "\n"
      R"({"type":"session","user_id":"u1","at":1704067200,"event_id":")" +
      std::string(256, 'y') + R"("})" + "\n";
  DecodedChunk chunk = decode(text);
  ASSERT_EQ(chunk.invalid_records, 5);
  ASSERT_EQ(chunk.errors.size(), 5u);
  for (const RecordError& error : chunk.errors) EXPECT_EQ(error.field, "event_id") << error.line;
  EXPECT_EQ(chunk.errors[0].reason, "must be a string");
  EXPECT_EQ(chunk.errors[1].reason, "must not be empty");
  EXPECT_EQ(chunk.errors[2].reason, "is longer than 256 bytes");
  ASSERT_EQ(chunk.batch.sessions.size(), 1u);  // exactly 256 bytes is fine
  EXPECT_EQ(chunk.batch.sessions[0].event_id.size(), 256u);
}

// A byte-order mark is skipped when reading from a stream too, and only at the very start:
// anywhere else it is part of the text (here: not a JSON object).
TEST(EventCodecIdentityTest, AByteOrderMarkIsSkippedOnlyAtTheStart) {
  std::stringstream stream(
      "\xEF\xBB\xBF{\"type\":\"session\",\"user_id\":\"u1\",\"at\":1704067200}\n"
      "\xEF\xBB\xBF{\"type\":\"session\",\"user_id\":\"u2\",\"at\":1704067200}\n");
  EventReader reader(stream, EventFormat::kNdjson, 1);
  DecodedChunk chunk;
  ASSERT_TRUE(*reader.next(chunk));
  EXPECT_TRUE(chunk.ok()) << chunk.errors.front().to_string();
  EXPECT_EQ(chunk.first_line, 1);
  ASSERT_TRUE(*reader.next(chunk));
  EXPECT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.errors.front().line, 2);
  // A body that is only a byte-order mark holds no records.
  EXPECT_EQ(decode("\xEF\xBB\xBF").records, 0);
  EXPECT_EQ(decode("\xEF\xBB").invalid_records, 1);  // a truncated mark is not one
}

}  // namespace
}  // namespace fulcrum
