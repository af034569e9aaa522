// The PostgreSQL backend, for several `fulcrum serve` replicas sharing one database. Each call
// leases a libpq connection from a pool (so calls from many threads run in parallel); bulk
// ingestion streams binary COPY inside one transaction; experiment analyses run as SQL
// aggregates so only sufficient statistics leave the server; scans stream through a cursor in
// bounded batches. Cross-replica safety comes from the database, not from process locks:
// audit appends serialise on a transaction-scoped advisory lock, documents are written with a
// compare-and-set on their version, and migrations run under an advisory lock.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace fulcrum {

class PostgresStore final : public Store {
 public:
  // Connects to a libpq URI (postgres://user:password@host:port/db?options=...; a schema is
  // chosen with `options=-csearch_path%3Dname`) and applies pending migrations. Returns
  // kUnavailable when the server cannot be reached.
  static Result<std::unique_ptr<PostgresStore>> open(const std::string& url);
  ~PostgresStore() override;

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

  // Slow path kept for comparison in bench/pg_ingest_bench.cc: the same batch written with
  // one INSERT per row (still one transaction). Production code calls ingest().
  Status ingest_row_by_row(const EventBatch& batch);

  struct Connection;  // one libpq connection and its per-session state (postgres_store.cc)

 private:
  explicit PostgresStore(std::string url);
  class Lease;  // RAII loan of a pooled connection
  Result<std::unique_ptr<Connection>> connect() const;
  // get_document and get_document_head (the body left empty).
  Result<std::optional<Document>> find_document(const std::string& kind, const std::string& id,
                                                bool with_body);
  Result<std::unique_ptr<Connection>> acquire();
  void release(std::unique_ptr<Connection> connection);

  std::string url_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace fulcrum
