"""Baseline for bench/results_bench.cc: the same experiment analysis with pandas and
statsmodels on the same events, exported as CSV by the bench (first exposure per user,
per-user sums of each metric after exposure and in the 14-day pre-period, then Welch t-tests).
Argument: the path prefix of <prefix>exposures.csv and <prefix>metric_events.csv."""
import sys
import time

import pandas as pd
from statsmodels.stats.weightstats import ttest_ind

prefix = sys.argv[1]
started = time.perf_counter()
exposures = pd.read_csv(prefix + "exposures.csv").rename(columns={"at": "exposed_at"})
all_events = pd.read_csv(prefix + "metric_events.csv").rename(columns={"at": "event_at"})
loaded = time.perf_counter()
first = exposures.sort_values("exposed_at").drop_duplicates("user_id", keep="first")
for metric in ["conversion_rate", "revenue_per_user"]:
    events = all_events[all_events.metric == metric]
    joined = events.merge(first, on="user_id")
    post = joined[joined.event_at >= joined.exposed_at].groupby("user_id").value.sum()
    pre_rows = joined[(joined.event_at < joined.exposed_at) &
                    (joined.event_at >= joined.exposed_at - 14 * 86400)]
    pre = pre_rows.groupby("user_id").value.sum()
    per_user = first.set_index("user_id")
    per_user["post"] = post.reindex(per_user.index, fill_value=0.0)
    per_user["pre"] = pre.reindex(per_user.index, fill_value=0.0)
    control = per_user[per_user.variant == "control"].post
    variant = per_user[per_user.variant == "variant"].post
    stat, p_value, df = ttest_ind(variant, control, usevar="unequal")
    print(metric, len(control), len(variant), control.mean(), variant.mean(), p_value)
done = time.perf_counter()
# On stderr, so the bench shows it: how much of the baseline is reading the CSV files.
print(f"pandas baseline: load {loaded - started:.1f} s, aggregation + tests {done - loaded:.1f} s",
      file=sys.stderr)
