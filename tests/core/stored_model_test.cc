// StoredModelHolder over an in-memory ModelStore: training, loading, refusing, leases.
#include "core/stored_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>
#include <vector>

#include "core/binary_codec.h"
#include "core/ids.h"

namespace fulcrum {
namespace {

struct FakeModel {
  UnixSeconds trained = 0;
  double weight = 0;
  UnixSeconds trained_at() const { return trained; }
};

ModelCodec<FakeModel> fake_codec(std::string fingerprint = "opts-a", int format = 1) {
  return {"fake", format, std::move(fingerprint),
          [](const FakeModel& model) {
            ByteWriter out;
            out.i64(model.trained);
            out.f64(model.weight);
            return out.take();
          },
          [](std::string_view payload) -> Result<FakeModel> {
            ByteReader in(payload);
            FakeModel model;
            model.trained = in.i64();
            model.weight = in.f64();
            FULCRUM_RETURN_IF_ERROR(in.finish());
            return model;
          }};
}

// One store shared by several holders (as replicas share one database).
class MemoryModelStore final : public ModelStore {
 public:
  Result<std::optional<StoredModel>> load(const std::string& name) override {
    std::lock_guard lock(mutex_);
    ++loads;
    auto it = models.find(name);
    if (it == models.end()) return std::optional<StoredModel>{};
    return std::optional<StoredModel>(it->second);
  }
  Result<std::optional<StoredRecord>> stored_record(const std::string& name) override {
    std::lock_guard lock(mutex_);
    ++record_checks;
    auto it = models.find(name);
    if (it == models.end()) return std::optional<StoredRecord>{};
    return std::optional<StoredRecord>(
        StoredRecord{it->second.store_version, it->second.store_updated_at});
  }
  Result<std::int64_t> save(const StoredModel& model, UnixSeconds now) override {
    std::lock_guard lock(mutex_);
    auto& slot = models[model.name];
    const std::int64_t version = slot.store_version + 1;
    slot = model;
    slot.store_version = version;
    slot.store_updated_at = now;
    ++saves;
    return version;
  }
  Result<bool> acquire_training_lease(const std::string& name, UnixSeconds now,
                                      UnixSeconds until) override {
    std::lock_guard lock(mutex_);
    auto it = lease_until.find(name);
    if (it != lease_until.end() && it->second > now) return false;
    lease_until[name] = until;
    return true;
  }
  Status release_training_lease(const std::string& name) override {
    std::lock_guard lock(mutex_);
    lease_until.erase(name);
    return Status::ok();
  }

  std::mutex mutex_;
  std::map<std::string, StoredModel> models;
  std::map<std::string, UnixSeconds> lease_until;
  int loads = 0, saves = 0, record_checks = 0;
};

StoredModelHolderOptions quick_options(std::vector<std::string>* log = nullptr) {
  StoredModelHolderOptions options;
  options.max_age = 100;
  options.recheck_seconds = 50;
  options.wait_poll = std::chrono::milliseconds(1);
  options.wait_polls = 5;
  options.log = [log](std::string_view line) {
    if (log != nullptr) log->emplace_back(line);
  };
  return options;
}

TEST(StoredModelHolderTest, TrainsWhenAbsentOrStaleAndKeepsTheOldModelOnFailure) {
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options());
  int trainings = 0;
  bool fail = false;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    if (fail) return internal_error("training failed");
    return FakeModel{now, 0.5};
  };
  EXPECT_EQ(holder.model(), nullptr);
  EXPECT_FALSE(holder.served().has_value());
  EXPECT_EQ((*holder.fresh(1000, train, nullptr))->trained, 1000);
  EXPECT_EQ((*holder.fresh(1100, train, nullptr))->trained, 1000);  // 100 s old: still fresh
  EXPECT_EQ(trainings, 1);
  EXPECT_EQ((*holder.fresh(1101, train, nullptr))->trained, 1101);  // stale: retrained
  EXPECT_EQ(trainings, 2);
  EXPECT_EQ(holder.trainings(), 2);
  ASSERT_TRUE(holder.served().has_value());
  EXPECT_EQ(holder.served()->source, "trained");
  EXPECT_EQ(holder.served()->trained_at, 1101);
  fail = true;
  EXPECT_FALSE(holder.fresh(5000, train, nullptr).is_ok());
  EXPECT_FALSE(holder.refresh(5000, train, nullptr).is_ok());
  EXPECT_EQ(holder.model()->trained, 1101);  // the old model still serves
}

TEST(StoredModelHolderTest, ConcurrentCallersShareOneTraining) {
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options());
  std::atomic<int> trainings = 0;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return FakeModel{now, 1};
  };
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&] { EXPECT_TRUE(holder.fresh(1000, train, nullptr).is_ok()); });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(trainings.load(), 1);
}

TEST(StoredModelHolderTest, ASecondHolderLoadsTheStoredModelInsteadOfTraining) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> first(fake_codec(), quick_options());
  StoredModelHolder<FakeModel> second(fake_codec(), quick_options());
  int trainings = 0;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    return FakeModel{now, 0.25 + trainings};
  };
  ASSERT_TRUE(first.fresh(1000, train, &store).is_ok());
  EXPECT_EQ(store.saves, 1);
  const StoredModel& stored = store.models.at("fake");
  EXPECT_EQ(stored.content_sha256, sha256_hex(stored.payload));
  EXPECT_EQ(stored.trained_at, 1000);
  EXPECT_EQ(stored.options_fingerprint, "opts-a");

  auto loaded = second.fresh(1050, train, &store);
  ASSERT_TRUE(loaded.is_ok());
  EXPECT_EQ(trainings, 1);  // the second holder did not train
  EXPECT_EQ(second.trainings(), 0);
  EXPECT_EQ((*loaded)->weight, 1.25);
  EXPECT_EQ(second.served()->source, "loaded");
  EXPECT_EQ(second.served()->content_sha256, first.served()->content_sha256);
  EXPECT_EQ(second.served()->store_version, 1);
  // The training lease was released after training.
  EXPECT_TRUE(store.lease_until.empty());
}

TEST(StoredModelHolderTest, ACorruptOrForeignStoredModelIsRefusedLoggedAndOverwritten) {
  struct Case {
    const char* what;
    std::function<void(StoredModel&)> spoil;
    const char* logged;
  };
  const std::vector<Case> cases = {
      {"flipped payload byte", [](StoredModel& m) { m.payload[3] ^= 0x01; },
       "content hash mismatch"},
      {"other format version", [](StoredModel& m) { m.format_version = 2; }, "format version 2"},
      {"other options", [](StoredModel& m) { m.options_fingerprint = "opts-b"; }, "other options"},
      // A payload whose hash is right but which does not decode (a bug in an encoder).
      {"undecodable payload",
       [](StoredModel& m) {
         m.payload.pop_back();
         m.content_sha256 = sha256_hex(m.payload);
       },
       "malformed model payload"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MemoryModelStore store;
    StoredModelHolder<FakeModel> first(fake_codec(), quick_options());
    auto train = [](UnixSeconds now) -> Result<FakeModel> { return FakeModel{now, 7}; };
    ASSERT_TRUE(first.fresh(1000, train, &store).is_ok());
    c.spoil(store.models.at("fake"));

    std::vector<std::string> log;
    StoredModelHolder<FakeModel> second(fake_codec(), quick_options(&log));
    ASSERT_TRUE(second.fresh(1010, train, &store).is_ok());
    EXPECT_EQ(second.trainings(), 1);  // refused, so retrained
    EXPECT_EQ(second.served()->source, "trained");
    ASSERT_EQ(log.size(), 1u);
    EXPECT_NE(log[0].find("refusing the stored model"), std::string::npos) << log[0];
    EXPECT_NE(log[0].find(c.logged), std::string::npos) << log[0];
    // ... and overwrote the spoilt record with a good one.
    const StoredModel& now_stored = store.models.at("fake");
    EXPECT_EQ(now_stored.trained_at, 1010);
    EXPECT_EQ(now_stored.format_version, 1);
    EXPECT_EQ(now_stored.options_fingerprint, "opts-a");
    EXPECT_EQ(now_stored.content_sha256, sha256_hex(now_stored.payload));
  }
}

TEST(StoredModelHolderTest, AStaleStoredModelIsRetrainedQuietly) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> first(fake_codec(), quick_options());
  auto train = [](UnixSeconds now) -> Result<FakeModel> { return FakeModel{now, 1}; };
  ASSERT_TRUE(first.fresh(1000, train, &store).is_ok());
  std::vector<std::string> log;
  StoredModelHolder<FakeModel> second(fake_codec(), quick_options(&log));
  ASSERT_TRUE(second.fresh(1101, train, &store).is_ok());  // stored one is 101 s old
  EXPECT_EQ(second.trainings(), 1);
  EXPECT_TRUE(log.empty());
}

TEST(StoredModelHolderTest, AHolderWithAStaleModelServesItWhileAnotherHoldsTheLease) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options());
  int trainings = 0;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    return FakeModel{now, 1};
  };
  ASSERT_TRUE(holder.fresh(1000, train, &store).is_ok());
  // Another replica took the lease to retrain.
  ASSERT_TRUE(*store.acquire_training_lease("fake", 1200, 5000));
  auto served = holder.fresh(1200, train, &store);
  ASSERT_TRUE(served.is_ok());
  EXPECT_EQ((*served)->trained, 1000);  // the stale model, not a second training
  EXPECT_EQ(trainings, 1);
  // Once the other replica stored its model, the holder loads it.
  StoredModel theirs =
      make_stored_model("fake", 1, "opts-a", 1210, fake_codec().encode(FakeModel{1210, 9}));
  ASSERT_TRUE(store.save(theirs, 1210).is_ok());
  ASSERT_TRUE(store.release_training_lease("fake").is_ok());
  auto reloaded = holder.fresh(1220, train, &store);
  ASSERT_TRUE(reloaded.is_ok());
  EXPECT_EQ((*reloaded)->weight, 9);
  EXPECT_EQ(trainings, 1);
}

// A replica without a model does not hold a worker for the other replica's whole training:
// after its bounded wait it answers kUnavailable (503 + Retry-After), and once the silent
// lease holder's lease expires, the next call trains here.
TEST(StoredModelHolderTest, AHolderWithoutAModelWaitsThenIsUnavailableUntilTheLeaseExpires) {
  MemoryModelStore store;
  std::vector<std::string> log;
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options(&log));
  ASSERT_TRUE(*store.acquire_training_lease("fake", 1000, 5000));
  int trainings = 0;
  auto train = [&](UnixSeconds now) -> Result<FakeModel> {
    ++trainings;
    return FakeModel{now, 1};
  };
  auto waiting = holder.fresh(1000, train, &store);
  ASSERT_FALSE(waiting.is_ok());
  EXPECT_EQ(waiting.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(trainings, 0);
  EXPECT_GE(store.record_checks, 1 + 5);  // the first look and five polls (nothing stored)
  auto after_expiry = holder.fresh(5000, train, &store);
  ASSERT_TRUE(after_expiry.is_ok()) << after_expiry.status().to_string();
  EXPECT_EQ(trainings, 1);
}

TEST(StoredModelHolderTest, AFreshHolderPicksUpANewerStoredModelAtTheRecheck) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options());
  auto train = [](UnixSeconds now) -> Result<FakeModel> { return FakeModel{now, 1}; };
  ASSERT_TRUE(holder.fresh(1000, train, &store).is_ok());
  // The retraining job of another replica stores a newer model.
  ASSERT_TRUE(store
                  .save(make_stored_model("fake", 1, "opts-a", 1020,
                                          fake_codec().encode(FakeModel{1020, 3})),
                        1020)
                  .is_ok());
  EXPECT_EQ((*holder.fresh(1030, train, &store))->trained, 1000);  // recheck not due (50 s)
  EXPECT_EQ((*holder.fresh(1050, train, &store))->trained, 1020);  // due: the newer one
  EXPECT_EQ(holder.served()->source, "loaded");
  EXPECT_EQ(holder.trainings(), 1);
}

// The recheck reads a model (tens of MB in production) only when its record changed: not
// the holder's own write, nor one it loaded already; a record erased and written again
// (version 1 again, another write time) is read.
TEST(StoredModelHolderTest, TheRecheckReadsTheStoredModelOnlyWhenItsRecordChanged) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> trainer(fake_codec(), quick_options());
  StoredModelHolder<FakeModel> reader(fake_codec(), quick_options());
  auto train = [](UnixSeconds now) -> Result<FakeModel> { return FakeModel{now, 1}; };
  ASSERT_TRUE(trainer.fresh(1000, train, &store).is_ok());
  ASSERT_TRUE(reader.fresh(1001, train, &store).is_ok());
  ASSERT_EQ(reader.served()->source, "loaded");
  const int loads = store.loads;
  const int checks = store.record_checks;
  EXPECT_EQ((*trainer.fresh(1060, train, &store))->trained, 1000);  // recheck due
  EXPECT_EQ((*reader.fresh(1060, train, &store))->trained, 1000);
  EXPECT_EQ(store.record_checks, checks + 2);
  EXPECT_EQ(store.loads, loads);  // both serve the stored record: nothing read

  store.models.clear();  // an operator erases it; another replica stores a newer model
  ASSERT_TRUE(store
                  .save(make_stored_model("fake", 1, "opts-a", 1070,
                                          fake_codec().encode(FakeModel{1070, 5})),
                        1070)
                  .is_ok());
  ASSERT_EQ(store.models.at("fake").store_version, 1);  // the version the reader holds
  EXPECT_EQ((*reader.fresh(1075, train, &store))->trained, 1000);  // recheck not due
  EXPECT_EQ((*reader.fresh(1111, train, &store))->trained, 1070);
  EXPECT_EQ(store.loads, loads + 1);
  EXPECT_EQ(reader.trainings(), 0);
}

TEST(StoredModelHolderTest, TheServedModelIsNamedInMetricsAndJson) {
  MemoryModelStore store;
  StoredModelHolder<FakeModel> holder(fake_codec(), quick_options());
  auto train = [](UnixSeconds now) -> Result<FakeModel> { return FakeModel{now, 1}; };
  ASSERT_TRUE(holder.fresh(1'735'689'600, train, &store).is_ok());
  const ServedModel served = *holder.served();
  const std::string hash = store.models.at("fake").content_sha256;
  EXPECT_EQ(served.content_sha256, hash);
  const std::string text = render_served_model_metrics({served});
  EXPECT_NE(text.find("# TYPE fulcrum_model_info gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("fulcrum_model_info{model=\"fake\",sha256=\"" + hash +
                      "\",format_version=\"1\",options=\"opts-a\",source=\"trained\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fulcrum_model_trained_timestamp_seconds{model=\"fake\"} 1735689600\n"),
            std::string::npos)
      << text;
  const nlohmann::json json = to_json(served);
  EXPECT_EQ(json["content_sha256"], hash);
  EXPECT_EQ(json["trained_at"], "2025-01-01T00:00:00Z");
  EXPECT_EQ(json["source"], "trained");
  EXPECT_EQ(json["store_version"], 1);
  // Nothing served yet: the headers only, no series.
  EXPECT_EQ(render_served_model_metrics({}).find("fulcrum_model_info{"), std::string::npos);
}

TEST(BinaryCodecTest, RoundTripsBitsAndRefusesTruncationAndTrailingBytes) {
  ByteWriter out;
  out.u8(7);
  out.i64(-5);
  out.f64(0.1 + 0.2);
  out.f32(1.0f / 3.0f);
  out.str(std::string_view("ab\0c", 4));
  const double values[] = {1.5, -0.0, 1e-300};
  out.f64_array(values, 3);
  const std::string bytes = out.take();
  ByteReader in(bytes);
  EXPECT_EQ(in.u8(), 7);
  EXPECT_EQ(in.i64(), -5);
  EXPECT_EQ(in.f64(), 0.1 + 0.2);
  EXPECT_EQ(in.f32(), 1.0f / 3.0f);
  EXPECT_EQ(in.str(), std::string("ab\0c", 4));
  auto read = in.f64_vector(3);
  ASSERT_EQ(read.size(), 3u);
  EXPECT_TRUE(std::signbit(read[1]));
  EXPECT_TRUE(in.finish().is_ok());

  ByteReader truncated(std::string_view(bytes).substr(0, bytes.size() - 1));
  truncated.u8(), truncated.i64(), truncated.f64(), truncated.f32(), truncated.str();
  EXPECT_TRUE(truncated.f64_vector().empty());
  EXPECT_FALSE(truncated.finish().is_ok());

  ByteReader wrong_count(bytes);
  wrong_count.u8(), wrong_count.i64(), wrong_count.f64(), wrong_count.f32(), wrong_count.str();
  wrong_count.f64_vector(4);
  EXPECT_FALSE(wrong_count.finish().is_ok());

  const std::string longer = bytes + "x";
  ByteReader trailing(longer);
  trailing.u8(), trailing.i64(), trailing.f64(), trailing.f32(), trailing.str(),
      trailing.f64_vector();
  EXPECT_FALSE(trailing.finish().is_ok());
}

}  // namespace
}  // namespace fulcrum
