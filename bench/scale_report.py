#!/usr/bin/python3
"""Prints the scaling benchmark's table (bench/scale_bench.sh) from its results.tsv.

Each cell is "wall s / CPU s / peak RSS MB (load)" of the latest series (one invocation of the
bench) of that engine, size and backend; with several runs in it (SCALE_RUNS), the run of
median CPU time, and "median of N"; CPU = user + system seconds of the measured process (for PostgreSQL that is the
client only, so the PostgreSQL/SQLite ratio uses wall time). Growth columns divide CPU seconds
(wall seconds in brackets) of consecutive sizes, next to the issue's bounds. The last column
is the raw-scan engines' figures from issue 13 (wall s, peak RSS; 2 cores, SQLite).
"""
import csv
import sys

ENGINES = ["demo", "sunset", "upgrade-timing", "recommendations", "campaigns", "server"]
LABELS = {
    "demo": "`demo` (generate + ingest)",
    "sunset": "`sunset`",
    "upgrade-timing": "`evaluate upgrade-timing`",
    "recommendations": "`evaluate recommendations`",
    "campaigns": "`campaigns trigger`",
    "server": "server: GET /dashboard trains every model",
}
# Issue 13's "Why" table: the raw-event-scan engines (wall s, peak RSS MB) at 50k and 250k.
RAW_SCAN = {
    "sunset": ((0.73, 129), (9.4, 360)),
    "upgrade-timing": ((3.3, 938), (39.1, 4350)),
    "recommendations": ((1.4, 606), (14.2, 2530)),
    "campaigns": ((1.3, 169), (12.1, 559)),
}
BOUNDS = {(50000, 250000): 6.0, (250000, 1000000): 4.5}


def users_label(n):
    return f"{n // 1000000}M" if n % 1000000 == 0 else f"{n // 1000}k"


def main(path):
    series = {}  # (engine, users, backend) -> rows of its latest series
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["engine"], int(row["users"]), row["backend"])
            runs = series.setdefault(key, [])
            if runs and runs[-1].get("series") != row.get("series"):
                runs.clear()
            runs.append(row)

    def cpu(row):
        return float(row["user_s"] or 0) + float(row["sys_s"] or 0)

    rows = {}
    for key, runs in series.items():
        ordered = sorted(runs, key=cpu)
        median = dict(ordered[(len(ordered) - 1) // 2])
        median["runs"] = len(ordered)
        rows[key] = median
    sizes = {b: sorted({u for (_, u, bb) in rows if bb == b}) for b in ("sqlite", "postgres")}

    def cell(row):
        if row is None:
            return "—"
        text = (f"{float(row['wall_s'] or 0):.1f} s / {cpu(row):.1f} s / "
                f"{int(row['peak_rss_mb'] or 0)} MB (load {row['load1']})")
        if row["runs"] > 1:
            text += f", median of {row['runs']}"
        return text if row["status"] == "ok" else f"{text} **{row['status']}**"

    header = ["engine"]
    header += [f"SQLite {users_label(u)}" for u in sizes["sqlite"]]
    pairs = list(zip(sizes["sqlite"], sizes["sqlite"][1:]))
    header += [f"{users_label(b)}/{users_label(a)} CPU (wall)" for a, b in pairs]
    header += [f"PostgreSQL {users_label(u)}" for u in sizes["postgres"]]
    header += [f"PG/SQLite wall {users_label(u)}" for u in sizes["postgres"]]
    header += ["raw-scan before (issue 13): 50k, 250k"]
    print("cells: wall / CPU (user+sys) / peak RSS (1-min load average at start)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for engine in ENGINES:
        line = [LABELS[engine]]
        line += [cell(rows.get((engine, u, "sqlite"))) for u in sizes["sqlite"]]
        for a, b in pairs:
            ra, rb = rows.get((engine, a, "sqlite")), rows.get((engine, b, "sqlite"))
            if (ra is None or rb is None or "ok" not in (ra["status"], rb["status"]) or
                    ra["status"] != rb["status"] or cpu(ra) == 0 or
                    float(ra["wall_s"] or 0) == 0):
                line.append("—")
                continue
            growth = cpu(rb) / cpu(ra)
            wall_growth = float(rb["wall_s"]) / float(ra["wall_s"])
            bound = BOUNDS.get((a, b))
            verdict = "" if bound is None else (" ok" if growth <= bound else f" **> {bound}x**")
            line.append(f"{growth:.2f}x ({wall_growth:.2f}x){verdict}")
        line += [cell(rows.get((engine, u, "postgres"))) for u in sizes["postgres"]]
        for u in sizes["postgres"]:
            rp, rs = rows.get((engine, u, "postgres")), rows.get((engine, u, "sqlite"))
            if rp is None or rs is None or float(rs["wall_s"] or 0) == 0:
                line.append("—")
            else:
                ratio = float(rp["wall_s"]) / float(rs["wall_s"])
                line.append(f"{ratio:.2f}x" + ("" if ratio <= 2 else " **> 2x**"))
        raw = RAW_SCAN.get(engine)
        line.append("—" if raw is None else
                    f"{raw[0][0]} s, {raw[0][1]} MB; {raw[1][0]} s, {raw[1][1]} MB")
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fulcrum-scale/results.tsv")
