from backend.analytics.automated_optimization import AutomatedOptimization

# Initialize service
optimization_service = AutomatedOptimization(db_session, access_control_service, audit_service)

# Create A/B test
test_id = optimization_service.create_ab_test(
    test_name="Feature UI Test",
    feature_name="account_linking",
    description="Testing new UI for account linking",
    hypothesis="New UI will improve conversion rate by 20%",
    success_metrics=["conversion_rate", "revenue_per_user"],
    test_groups={"control": {"ui": "old"}, "variant": {"ui": "new"}},
    traffic_allocation={"control": 0.5, "variant": 0.5},
    start_date=datetime.utcnow(),
    created_by="admin_user"
)

# Generate feature recommendations
recommendations = optimization_service.generate_feature_recommendations("user_123")

# Optimize upgrade timing
timing = optimization_service.optimize_upgrade_timing("user_123")

# Trigger retention campaigns
campaigns = optimization_service.trigger_retention_campaigns()

# Analyze feature sunset
sunset_analyses = optimization_service.analyze_feature_sunset()
