# Analyze feature sunset
sunset_analyses = optimization_service.analyze_feature_sunset()

print("Feature Sunset Analysis:")
for analysis in sunset_analyses:
    print(f"\n{analysis['feature_name']}:")
    print(f"  Current Usage: {analysis['current_usage']}")
    print(f"  Usage Trend: {analysis['usage_trend']}")
    print(f"  Revenue Impact: ${analysis['revenue_impact']:.2f}")
    print(f"  Maintenance Cost: ${analysis['maintenance_cost']:.2f}")
    print(f"  Sunset Recommendation: {analysis['sunset_recommendation']}")
    if analysis['sunset_date']:
        print(f"  Sunset Date: {analysis['sunset_date']}")
    print(f"  Migration Plan: {', '.join(analysis['migration_plan'])}")
