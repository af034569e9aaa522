"""Baseline for bench/results_bench.cc: the same experiment analysis with pandas and
statsmodels, reading the same SQLite file (first exposure per user, per-user sums of each
metric after exposure and in the 14-day pre-period, then Welch t-tests)."""
import sqlite3
import sys

import pandas as pd
from statsmodels.stats.weightstats import ttest_ind

path = sys.argv[1]
con = sqlite3.connect(path)
exposures = pd.read_sql_query(
    "SELECT user_id, variant, at FROM exposures WHERE experiment_id = 'exp_bench'", con)
first = exposures.sort_values("at").drop_duplicates("user_id", keep="first")
for metric in ["conversion_rate", "revenue_per_user"]:
    events = pd.read_sql_query(
        "SELECT user_id, value, at AS event_at FROM metric_events WHERE metric = ?", con,
        params=(metric,))
    joined = events.merge(first, on="user_id")
    post = joined[joined.event_at >= joined.at].groupby("user_id").value.sum()
    pre_rows = joined[(joined.event_at < joined.at) & (joined.event_at >= joined.at - 14 * 86400)]
    pre = pre_rows.groupby("user_id").value.sum()
    per_user = first.set_index("user_id")
    per_user["post"] = post.reindex(per_user.index, fill_value=0.0)
    per_user["pre"] = pre.reindex(per_user.index, fill_value=0.0)
    control = per_user[per_user.variant == "control"].post
    variant = per_user[per_user.variant == "variant"].post
    stat, p_value, df = ttest_ind(variant, control, usevar="unequal")
    print(metric, len(control), len(variant), control.mean(), variant.mean(), p_value)
