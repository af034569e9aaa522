// An acknowledged batch survives kill -9 of the writing process: a child ingests batches
// and acknowledges each through a pipe; the parent kills it without warning right after
// an acknowledgement and checks every acknowledged batch is in the reopened store, and that
// the usage rollups (written in the same transaction) still agree with the events.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "store/store.h"

namespace fulcrum {
namespace {

constexpr int kEventsPerBatch = 2000;

[[noreturn]] void run_writer(const std::string& path, int ack_fd) {
  auto store = open_store(path);
  if (!store.is_ok()) _exit(3);
  for (int batch_number = 0;; ++batch_number) {
    EventBatch batch;
    for (int i = 0; i < kEventsPerBatch; ++i) {
      batch.metric_events.push_back(
          MetricEvent{"user" + std::to_string(i), "batch_" + std::to_string(batch_number), 1.0,
                      1'700'000'000 + batch_number});
      // Events the usage rollups aggregate; batches cross day boundaries.
      batch.sessions.push_back(SessionEvent{"user" + std::to_string(i),
                                            1'700'000'000 + batch_number * 20'000 + i, 30});
      batch.feature_usage.push_back(FeatureUsageEvent{
          "user" + std::to_string(i), "f" + std::to_string(i % 7),
          1'700'000'000 + batch_number * 20'000 + i, 2});
    }
    if (!(*store)->ingest(batch).is_ok()) _exit(4);
    if (write(ack_fd, &batch_number, sizeof batch_number) != sizeof batch_number) _exit(5);
  }
}

TEST(DurabilityTest, AcknowledgedBatchesSurviveKill9) {
  const auto directory = std::filesystem::temp_directory_path() /
                         ("fulcrum_durability_" + std::to_string(::getpid()));
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "store.db").string();
  { ASSERT_TRUE(open_store(path).is_ok()); }

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    run_writer(path, pipe_fds[1]);
  }
  close(pipe_fds[1]);
  int last_acknowledged = -1;
  while (last_acknowledged < 24) {
    int batch_number;
    ASSERT_EQ(read(pipe_fds[0], &batch_number, sizeof batch_number),
              static_cast<ssize_t>(sizeof batch_number));
    last_acknowledged = batch_number;
  }
  kill(child, SIGKILL);  // straight after the acknowledgement, mid-way through the next batch
  int wait_status = 0;
  waitpid(child, &wait_status, 0);
  close(pipe_fds[0]);
  ASSERT_TRUE(WIFSIGNALED(wait_status));

  auto store = open_store(path);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  std::map<std::string, int> events_per_batch;
  ASSERT_TRUE((*store)
                  ->scan_metric_events({}, [&](const MetricEvent& e) { ++events_per_batch[e.metric]; })
                  .is_ok());
  for (int batch_number = 0; batch_number <= last_acknowledged; ++batch_number) {
    EXPECT_EQ(events_per_batch["batch_" + std::to_string(batch_number)], kEventsPerBatch)
        << "acknowledged batch " << batch_number << " lost or partial";
  }
  // Whatever was in flight is all-or-nothing.
  for (const auto& [name, count] : events_per_batch) EXPECT_EQ(count, kEventsPerBatch) << name;
  // The rollups hold exactly the committed batches' events.
  auto report = (*store)->verify_rollups();
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->consistent()) << report->examples.front();
  std::int64_t rolled_up_sessions = 0, sessions = 0;
  ASSERT_TRUE((*store)
                  ->scan_user_days({}, [&](const UserDayRollup& r) { rolled_up_sessions += r.sessions; })
                  .is_ok());
  ASSERT_TRUE((*store)->scan_sessions({}, [&](const SessionEvent&) { ++sessions; }).is_ok());
  EXPECT_EQ(rolled_up_sessions, sessions);
  EXPECT_EQ(sessions, static_cast<std::int64_t>(events_per_batch.size()) * kEventsPerBatch);
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace fulcrum
