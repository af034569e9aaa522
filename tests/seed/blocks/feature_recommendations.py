# Generate feature recommendations
recommendations = optimization_service.generate_feature_recommendations("user_123")

print("Feature Recommendations:")
for rec in recommendations:
    print(f"\n{rec['feature_name']}:")
    print(f"  Type: {rec['recommendation_type']}")
    print(f"  Confidence: {rec['confidence_score']:.2f}")
    print(f"  Expected Value: ${rec['expected_value']:.2f}")
    print(f"  Priority: {rec['priority']}")
    print(f"  Reasoning: {', '.join(rec['reasoning'])}")
