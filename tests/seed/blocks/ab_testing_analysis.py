# Analyze A/B test results
results = optimization_service.analyze_ab_test_results("test_123")

print(f"A/B Test Results for {results['test_name']}:")
print(f"Winner: {results['winner']}")
print(f"Recommendation: {results['recommendation']}")

for group_name, data in results['group_analysis'].items():
    print(f"\n{group_name} Group:")
    print(f"  Conversion Rate: {data['conversion_rate']:.2%}")
    print(f"  Statistical Significance: {data['statistical_significance']:.3f}")
    print(f"  P-Value: {data['p_value']:.3f}")
    print(f"  Winner: {data['winner']}")
