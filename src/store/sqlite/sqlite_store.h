// The embedded SQLite backend (WAL, synchronous=FULL): one writer connection guarded by a
// mutex, and a pool of reader connections so reads run beside writes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.h"

struct sqlite3;

namespace fulcrum {

struct SqliteFirstExposures;  // first exposure per user of one experiment
namespace sqlite {
class UserNames;  // user key -> user id (event_segment.h)
}

class SqliteStore final : public Store {
 public:
  // Opens (creating when absent) the database file and applies pending migrations.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  Result<int> schema_version() override;
  using Store::ingest;
  Result<IngestReport> ingest(const EventBatch& batch, const IngestOptions& options) override;
  Result<std::optional<IdempotentResponse>> find_idempotent_response(const std::string& key,
                                                                     UnixSeconds now) override;
  Result<std::optional<User>> get_user(const std::string& user_id) override;
  Status scan_users(const std::function<void(const User&)>& visit) override;
  Result<std::int64_t> count_users() override;
  Result<std::vector<Feature>> list_features() override;
  Status scan_feature_usage(TimeRange range,
                            const std::function<void(const FeatureUsageEvent&)>& visit) override;
  Status scan_sessions(TimeRange range,
                       const std::function<void(const SessionEvent&)>& visit) override;
  Status scan_subscription_changes(
      TimeRange range, const std::function<void(const SubscriptionChangeEvent&)>& visit) override;
  Status scan_payments(TimeRange range,
                       const std::function<void(const PaymentEvent&)>& visit) override;
  Status scan_paywall_hits(TimeRange range,
                           const std::function<void(const PaywallHitEvent&)>& visit) override;
  Status scan_metric_events(TimeRange range,
                            const std::function<void(const MetricEvent&)>& visit) override;
  Status scan_exposures(const std::string& experiment_id,
                        const std::function<void(const ExposureEvent&)>& visit) override;
  Result<UnixSeconds> latest_event_time() override;
  Result<UnixSeconds> earliest_event_time() override;
  Result<std::vector<std::pair<std::string, std::int64_t>>> exposure_counts(
      const std::string& experiment_id) override;
  Result<std::int64_t> count_multi_variant_users(const std::string& experiment_id) override;
  Result<std::optional<std::string>> first_exposure_variant(const std::string& experiment_id,
                                                            const std::string& user_id) override;
  Result<std::vector<VariantMetricStats>> variant_metric_stats(
      const std::string& experiment_id, const std::string& metric,
      UnixSeconds pre_period_seconds) override;
  Result<ExposedUserMetric> exposed_user_metric(
      const std::string& experiment_id, const std::string& metric,
      std::span<const UnixSeconds> pre_window_edges) override;
  Result<std::vector<SliceMetricStats>> sliced_metric_stats(const std::string& experiment_id,
                                                            const std::string& metric,
                                                            const std::string& attribute,
                                                            double cap) override;
  Result<std::vector<DailyCumulative>> daily_cumulative(const std::string& experiment_id,
                                                        const std::string& metric) override;
  Status scan_user_period_sums(
      const std::string& metric, const std::vector<UnixSeconds>& edges,
      const std::function<void(const User&, const double* sums)>& visit) override;
  Result<std::int64_t> put_document(const Document& doc) override;
  Result<std::optional<Document>> get_document(const std::string& kind,
                                               const std::string& id) override;
  Result<std::optional<Document>> get_document_head(const std::string& kind,
                                               const std::string& id) override;
  Result<std::vector<Document>> list_documents(const std::string& kind) override;
  Status erase_document(const std::string& kind, const std::string& id) override;
  Status add_campaign_members(const std::vector<CampaignMember>& members) override;
  Result<std::int64_t> put_document_and_members(const Document& doc,
                                                const std::vector<CampaignMember>& members) override;
  Result<std::vector<CampaignMember>> campaign_members(const std::string& campaign_id) override;
  Result<std::vector<std::pair<std::string, UnixSeconds>>> last_targeted() override;
  Status put_api_key(const ApiKeyRecord& key) override;
  Result<std::optional<ApiKeyRecord>> find_api_key_by_hash(const std::string& key_hash) override;
  Result<std::vector<ApiKeyRecord>> list_api_keys() override;
  Status revoke_api_key(const std::string& key_id, UnixSeconds at) override;
  Status revoke_user_tokens(const std::string& user_id, UnixSeconds at) override;
  Result<std::optional<UnixSeconds>> user_tokens_revoked_at(const std::string& user_id) override;
  Result<AuditEntry> append_audit(
      AuditEntry entry, const std::function<std::string(const AuditEntry&)>& compute_hash) override;
  Status scan_audit(const std::function<void(const AuditEntry&)>& visit) override;
  Result<std::optional<AuditEntry>> audit_head() override;
  Result<std::vector<AuditEntry>> append_exposures_and_audit(
      const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
      const std::function<std::string(const AuditEntry&)>& compute_hash) override;
  Status scan_user_keys(
      const std::function<void(std::uint32_t, const std::string&)>& visit) override;
  Result<std::optional<std::uint32_t>> find_user_key(const std::string& user_id) override;
  Status scan_feature_keys(
      const std::function<void(std::uint32_t, const std::string&)>& visit) override;
  Status scan_user_days(const RollupQuery& query,
                        const std::function<void(const UserDayRollup&)>& visit) override;
  Status scan_feature_days(const RollupQuery& query,
                           const std::function<void(const FeatureDayRollup&)>& visit) override;
  Status scan_tier_changes(std::optional<std::uint32_t> user_key,
                           const std::function<void(const TierChangeRollup&)>& visit) override;
  Result<RollupVerification> verify_rollups() override;
  Status rebuild_rollups() override;
  Result<std::vector<DocumentChange>> pending_document_changes(std::size_t limit) override;
  Result<std::int64_t> prune_document_changes(UnixSeconds before, std::size_t limit) override;
  Status fan_out_document_changes(const std::vector<std::int64_t>& sequences,
                                  const std::vector<WebhookDelivery>& deliveries) override;
  Result<JobLeaseOutcome> acquire_job_lease(const std::string& job, const std::string& period,
                                            const std::string& holder, UnixSeconds now,
                                            UnixSeconds expires_at) override;
  Status finish_job_lease(const std::string& job, const std::string& period,
                          const std::string& holder, bool done) override;
  Result<std::int64_t> put_job_run(const JobRun& run) override;
  Result<std::vector<JobRun>> list_job_runs(const std::string& job, std::size_t limit) override;
  Result<std::vector<WebhookDelivery>> claim_webhook_deliveries(UnixSeconds now,
                                                                UnixSeconds claim_until,
                                                                std::size_t limit) override;
  Status update_webhook_delivery(const WebhookDelivery& delivery) override;
  Result<std::optional<WebhookDelivery>> get_webhook_delivery(
      const std::string& delivery_id) override;
  Result<std::vector<WebhookDelivery>> list_webhook_deliveries(
      const WebhookDeliveryFilter& filter) override;

 private:
  explicit SqliteStore(std::string path);
  class Reader;  // RAII lease of a pooled read connection
  Result<sqlite3*> open_connection() const;
  // get_document and get_document_head (the body left empty).
  Result<std::optional<Document>> find_document(const std::string& kind, const std::string& id,
                                                bool with_body);
  Result<sqlite3*> acquire_reader();
  void release_reader(sqlite3* db);
  // scan_user_period_sums' pass over the metric's segments: sums[user_key * periods + i].
  static Status metric_period_sums(sqlite3* db, const std::string& metric,
                                   const std::vector<UnixSeconds>& edges,
                                   std::vector<double>& sums);

  std::string path_;
  std::mutex write_mutex_;
  sqlite3* writer_ = nullptr;
  std::mutex pool_mutex_;
  std::vector<sqlite3*> idle_readers_;
  // Inside the caller's write transaction: upserts users and features, writes the events.
  Status write_batch(const EventBatch& batch);
  // --- events, stored as segments (sqlite_events.cc, event_segment.h) ---
  // Inside the caller's write transaction: gives users integer keys and writes segments.
  Status write_events(const EventBatch& batch);
  // After that transaction ends: keeps or forgets the user keys it handed out.
  void settle_user_keys(bool committed);
  Status load_user_keys();
  // Gives every event's user a key (new users get the next ones); keys[i] is events[i]'s.
  template <typename Event>
  Status register_user_keys(const std::vector<Event>& events, std::vector<std::uint32_t>& keys);
  // Writes the events' segments; `user_keys_out` (when given) receives each event's key.
  template <typename Event>
  Status write_segments(const std::vector<Event>& events,
                        std::vector<std::uint32_t>* user_keys_out = nullptr);
  // --- usage rollups (sqlite_rollups.cc), inside the caller's write transaction ---
  struct BatchUserKeys {  // per event of the batch, its user's key
    std::vector<std::uint32_t> usage, sessions, changes, payments, paywall_hits;
  };
  Status write_rollups(const EventBatch& batch, const BatchUserKeys& user_keys);
  Result<std::unordered_map<std::string, std::uint32_t>> feature_keys_for(const EventBatch& batch);
  // add: ON CONFLICT adds to the stored row (ingestion); else plain inserts (rebuild).
  Status upsert_rollups(const std::vector<UserDayRollup>& user_days,
                        const std::vector<FeatureDayRollup>& feature_days, bool add);
  // Deletes and recomputes every rollup from the segments (migration 4, rebuild_rollups).
  Status write_rebuilt_rollups();
  Status scan_tier_changes_on(sqlite3* db, std::optional<std::uint32_t> user_key,
                              const std::function<void(const TierChangeRollup&)>& visit);
  template <typename Event>
  Status scan_segments(sqlite3* db, const std::string* key, TimeRange range,
                       const std::function<void(const Event&)>& visit);
  // Names of user keys (index = key), grown as users are added; shared by readers.
  Result<std::shared_ptr<const sqlite::UserNames>> user_names(sqlite3* db);
  // Migration 2: moves events from the per-kind tables of schema 1 into segments.
  Status convert_legacy_events();
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };
  // Writer side (under write_mutex_): every user key known to this process.
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> user_key_of_;
  std::uint32_t max_user_key_ = 0;
  std::vector<std::string> user_keys_added_;  // in the open write transaction
  std::mutex names_mutex_;
  std::shared_ptr<const sqlite::UserNames> user_names_;
  // Built once per experiment and reused while no exposure was added: a results call
  // reads exposures once instead of once per metric.
  Result<std::shared_ptr<const SqliteFirstExposures>> first_exposures(
      sqlite3* db, const std::string& experiment_id);
  std::mutex exposure_cache_mutex_;
  std::map<std::string, std::pair<std::int64_t, std::shared_ptr<const SqliteFirstExposures>>>
      exposure_cache_;
};

}  // namespace fulcrum
