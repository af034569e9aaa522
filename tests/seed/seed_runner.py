"""Runs the seed's usage blocks (tests/seed/blocks, verbatim) against a service object."""
import contextlib
import io
import os
import sys

BLOCKS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "blocks")
PRINT_BLOCKS = ("ab_testing_analysis.py", "feature_recommendations.py",
                "upgrade_timing_optimization.py", "retention_campaigns.py",
                "feature_sunset_analysis.py")


def read_block(name):
    with open(os.path.join(BLOCKS_DIR, name), encoding="utf-8") as f:
        return f.read()


def run_block(name, namespace, source=None):
    """Executes one block in `namespace`; returns what it printed (also echoed)."""
    source = read_block(name) if source is None else source
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, os.path.join(BLOCKS_DIR, name), "exec"), namespace)
    printed = out.getvalue()
    sys.stdout.write(f"--- {name}\n{printed}")
    return printed


def check_printed(outputs, expect_new_campaigns=True):
    """Each print block printed its headline and at least one item of real data."""
    ab = outputs["ab_testing_analysis.py"]
    assert "A/B Test Results for Feature UI Test:" in ab, ab
    assert "control Group:" in ab and "variant Group:" in ab, ab
    assert "Feature Recommendations:" in outputs["feature_recommendations.py"]
    assert "  Type: " in outputs["feature_recommendations.py"], "no recommendation for user_123"
    timing = outputs["upgrade_timing_optimization.py"]
    assert "Current Tier: free" in timing, timing
    assert "Retention Campaigns:" in outputs["retention_campaigns.py"]
    if expect_new_campaigns:
        assert "  Trigger Type: " in outputs["retention_campaigns.py"], "the triggers found nobody"
    sunset = outputs["feature_sunset_analysis.py"]
    assert sunset.count("  Current Usage: ") == 20, sunset  # one per demo feature
