// The model_retraining job stores the models it retrains, names them (hash, trained_at) in
// the run's detail, and another replica of the same store then loads them instead of
// training.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "automation/jobs.h"
#include "optimization/automated_optimization.h"
#include "recommend/synthetic.h"
#include "store/model_document_store.h"

namespace fulcrum::automation {
namespace {

TEST(ModelRetrainingJobTest, TheRunDetailNamesTheStoredModelsThatAnotherReplicaLoads) {
  const auto directory =
      std::filesystem::temp_directory_path() / ("fulcrum_model_job_" + std::to_string(::getpid()));
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "store.db").string();
  auto first = open_store(path);
  auto second = open_store(path);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  SyntheticUsageOptions options;
  options.users = 1500;
  const EventBatch history = make_synthetic_usage(options);
  ASSERT_TRUE((*first)->ingest(history).is_ok());
  ManualClock clock(options.start + options.days * kSecondsPerDay);

  AutomatedOptimization replica_a(**first, clock);
  auto jobs = builtin_jobs({**first, clock, replica_a, [](AuditEntry) { return Status::ok(); }});
  const JobDefinition* retraining = nullptr;
  for (const auto& job : jobs) {
    if (job.defaults.name == "model_retraining") retraining = &job;
  }
  ASSERT_NE(retraining, nullptr);
  JobContext context{**first, clock, "2026-01-01T04:00:00Z", clock.now() + 3600,
                     [] { return false; }};
  auto detail = retraining->run(context);
  ASSERT_TRUE(detail.is_ok()) << detail.status().to_string();

  for (const char* name : {"recommendations", "upgrade_timing"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& model = (*detail)[name];
    auto doc = (*first)->get_document(kTrainedModelKind, name);
    ASSERT_TRUE(doc.is_ok() && doc->has_value());
    auto stored = parse_stored_model_body((*doc)->body);
    ASSERT_TRUE(stored.is_ok());
    EXPECT_EQ(model["content_sha256"], stored->content_sha256);
    EXPECT_EQ(model["trained_at"], format_iso8601(clock.now()));
    EXPECT_EQ(model["source"], "trained");
    EXPECT_EQ(model["store_version"], (*doc)->version);
  }

  AutomatedOptimization replica_b(**second, clock);
  ASSERT_TRUE(replica_b.generate_feature_recommendations(history.users[0].user_id).is_ok());
  EXPECT_EQ(replica_b.recommendation_service().trainings(), 0);
  const auto served = replica_b.served_models();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0].source, "loaded");
  EXPECT_EQ(served[0].content_sha256, (*detail)["recommendations"]["content_sha256"]);

  first->reset();
  second->reset();
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace fulcrum::automation
