#include "store/sqlite/event_segment.h"

#include <gtest/gtest.h>

namespace fulcrum::sqlite {
namespace {

TEST(EventSegmentTest, RoundTripsEveryFieldAndSharesTheDictionary) {
  const UserNames names = {"", "alice", "bob"};
  SegmentWriter writer;
  const std::vector<FeatureUsageEvent> events = {
      {"alice", "budgets", -5, -1}, {"bob", "budgets", INT64_MAX, 7}, {"alice", "tax", 0, 0}};
  const UserKey keys[] = {1, 2, 1};
  for (std::size_t i = 0; i < events.size(); ++i) {
    EventCodec<FeatureUsageEvent>::write(writer, keys[i], events[i]);
    writer.end_event();
  }
  const std::string blob = writer.finish();
  auto reader = SegmentReader::open(blob);
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  ASSERT_EQ(reader->count(), 3u);
  EXPECT_EQ(reader->strings().size(), 2u);  // "budgets" stored once
  for (const auto& expected : events) {
    const auto event = EventCodec<FeatureUsageEvent>::read(*reader, "", names);
    EXPECT_EQ(event.user_id, expected.user_id);
    EXPECT_EQ(event.feature, expected.feature);
    EXPECT_EQ(event.at, expected.at);
    EXPECT_EQ(event.count, expected.count);
  }
  EXPECT_TRUE(reader->status().is_ok());
  // Reading past the last event is reported, not undefined.
  EventCodec<FeatureUsageEvent>::read(*reader, "", names);
  EXPECT_FALSE(reader->status().is_ok());
}

TEST(EventSegmentTest, ResumeAppendsToAnExistingSegment) {
  const UserNames names = {"", "u1", "u2"};
  SegmentWriter first;
  EventCodec<MetricEvent>::write(first, 1, MetricEvent{"u1", "revenue", 2.5, 10});
  first.end_event();
  auto resumed = SegmentWriter::resume(first.finish());
  ASSERT_TRUE(resumed.is_ok());
  EventCodec<MetricEvent>::write(*resumed, 2, MetricEvent{"u2", "revenue", -1e-300, 11});
  resumed->end_event();
  const std::string blob = resumed->finish();  // the reader views into it
  auto reader = SegmentReader::open(blob);
  ASSERT_TRUE(reader.is_ok());
  ASSERT_EQ(reader->count(), 2u);
  auto a = EventCodec<MetricEvent>::read(*reader, "revenue", names);
  auto b = EventCodec<MetricEvent>::read(*reader, "revenue", names);
  EXPECT_EQ(std::tie(a.user_id, a.metric, a.value, a.at),
            std::make_tuple(std::string("u1"), std::string("revenue"), 2.5, UnixSeconds{10}));
  EXPECT_EQ(std::tie(b.user_id, b.value, b.at),
            std::make_tuple(std::string("u2"), -1e-300, UnixSeconds{11}));
  EXPECT_TRUE(reader->status().is_ok());
}

TEST(EventSegmentTest, DamagedBlobsAreErrorsNotCrashes) {
  SegmentWriter writer;
  EventCodec<PaywallHitEvent>::write(writer, 1, PaywallHitEvent{"u1", "wealth", 3});
  writer.end_event();
  const std::string blob = writer.finish();
  EXPECT_FALSE(SegmentReader::open("").is_ok());
  EXPECT_FALSE(SegmentReader::open(std::string_view(blob).substr(0, 14)).is_ok());  // cut dictionary
  std::string bad_format = blob;
  bad_format[0] = 9;
  EXPECT_FALSE(SegmentReader::open(bad_format).is_ok());
  // Unknown user key and a dictionary index out of range.
  auto reader = SegmentReader::open(blob);
  ASSERT_TRUE(reader.is_ok());
  EventCodec<PaywallHitEvent>::read(*reader, "", UserNames{""});
  EXPECT_FALSE(reader->status().is_ok());
  std::string bad_index = blob;
  bad_index[bad_index.size() - 12] = 5;  // the feature's dictionary index
  auto bad = SegmentReader::open(bad_index);
  ASSERT_TRUE(bad.is_ok());
  EventCodec<PaywallHitEvent>::read(*bad, "", UserNames{"", "u1"});
  EXPECT_FALSE(bad->status().is_ok());
}

TEST(UserNamesTest, CopiesShareChunksAndNeverChangeEachOther) {
  UserNames original;
  for (int i = 0; i < 70'000; ++i) original.push_back("u" + std::to_string(i));  // 2 chunks
  UserNames grown = original;
  grown.push_back("new");
  grown.set(70'003, "later");  // fills 70'001 and 70'002 with empty names
  EXPECT_EQ(original.size(), 70'000u);
  EXPECT_EQ(grown.size(), 70'004u);
  EXPECT_EQ(grown[70'000], "new");
  EXPECT_EQ(grown[70'002], "");
  EXPECT_EQ(grown[70'003], "later");
  grown.set(5, "renamed");  // a shared chunk is copied, not changed under the original
  EXPECT_EQ(original[5], "u5");
  EXPECT_EQ(grown[5], "renamed");
  EXPECT_EQ(grown[69'999], "u69999");
}

}  // namespace
}  // namespace fulcrum::sqlite
