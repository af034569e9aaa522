# Optimize upgrade timing
timing = optimization_service.optimize_upgrade_timing("user_123")

print("Upgrade Timing Optimization:")
print(f"Current Tier: {timing['current_tier']}")
print(f"Optimal Upgrade Date: {timing['optimal_upgrade_date']}")
print(f"Confidence Score: {timing['confidence_score']:.2f}")
print(f"Upgrade Reasons: {', '.join(timing['upgrade_reasons'])}")
print(f"Risk Factors: {', '.join(timing['risk_factors'])}")
print(f"Recommendation: {timing['recommendation']}")
