# Trigger retention campaigns
campaigns = optimization_service.trigger_retention_campaigns()

print("Retention Campaigns:")
for campaign in campaigns:
    print(f"\n{campaign['campaign_name']}:")
    print(f"  Trigger Type: {campaign['trigger_type']}")
    print(f"  Target Users: {len(campaign['target_users'])}")
    print(f"  Campaign Type: {campaign['campaign_type']}")
    print(f"  Message: {campaign['campaign_message']}")
    print(f"  Success Metrics: {', '.join(campaign['success_metrics'])}")
