"""Turn the result files of the benchmarks (var/bench/*.json) into Markdown tables.

    python bench/report.py            # prints the report and writes var/bench/report.md
    python bench/report.py --readme   # the compact search table of README.md's Performance section

Reads whatever exists of data-, search-, search-*.before, http-, pages- and throughput-<size>.json
for the sizes 10k, 100k and 1m, and checks the figures against DESIGN §10.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, table  # noqa: E402

RESULTS = REPO / "var" / "bench"
SIZES = ("10k", "100k", "1m")
SEARCH_TARGET_MS, RATIO_TARGET, RENDER_TARGET_MS, THROUGHPUT_TARGET, RSS_TARGET_MB = 10, 1.5, 30, 0.5, 150


def load(kind: str, size: str, suffix: str = "") -> dict | None:
    path = RESULTS / f"{kind}-{size}{suffix}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ms(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def by_name(rows: list[dict]) -> dict:
    return {row["name"]: row for row in rows}


def ok(flag: bool) -> str:
    return "meets" if flag else "**misses**"


def data_section(out: list[str]) -> None:
    rows = []
    for size in SIZES:
        d = load("data", size)
        if d:
            rows.append([size, f"{d['runs']:,}", f"{d['events']:,}", d["statuses"], d["runs_on_disk"],
                         d["events_on_disk"], f"{d['seconds']} s"])  # fmt: skip
    if rows:
        out += ["### Data (bench/generate.py)", "",
                table(["size", "runs", "events", "statuses", "runs table + indexes", "events table + indexes",
                       "generated in"], rows, align="lrrlrrr"), ""]  # fmt: skip


def search_section(out: list[str], kind: str, part: str, title: str, target: bool = True) -> dict:
    """The 15 x 2 x 2 table of one part ('service' of search-*, 'api' of http-*)."""
    runs = {size: load(kind, size) for size in SIZES}
    if not runs.get("1m") and not runs.get("10k"):
        return {}
    named = {size: by_name(r[part]) for size, r in runs.items() if r}
    biggest = "1m" if "1m" in named else max(named, key=SIZES.index)
    rows, worst, ratios, full_ratios = [], 0.0, [], []
    keys = [r["name"] for r in runs[biggest][part]]
    cases = []
    for key in keys:
        base = key.rsplit(" ", 1)[0]
        if base not in cases:
            cases.append(base)
    for case in cases:
        row = [case.replace(" +range", " + time range")]
        for page in ("first", "deep"):
            name = f"{case} {page}"
            for size in SIZES:
                r = named.get(size, {}).get(name)
                cell = ms(r["median_ms"]) if r else "—"
                if r and size == biggest:
                    cell += f" ({ms(r['p95_ms'])})"
                    worst = max(worst, r["median_ms"])
                row.append(cell)
            small, large = named.get("10k", {}).get(name), named.get("1m", {}).get(name)
            if small and large:
                ratio = large["median_ms"] / small["median_ms"]
                ratios.append(ratio)
                rows_small = small.get("avg_rows")
                full = rows_small is None or rows_small >= 99 or rows_small >= large.get("avg_rows", 0)
                if full:
                    full_ratios.append(ratio)
                row.append(f"{ratio:.2f}" + ("" if full else "†"))
            else:
                row.append("—")
        rows.append(row)
    headers = ["filters", "first 10k", "first 100k", "first 1M (p95)", "1M÷10k",
               "deep 10k", "deep 100k", "deep 1M (p95)", "1M÷10k"]  # fmt: skip
    # Reorder the cells: first page (3 sizes + ratio), deep page (3 sizes + ratio).
    rows = [[r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]] for r in rows]
    out += [f"### {title}", "", table(headers, rows), ""]
    summary = {"worst_ms": worst, "max_ratio": max(ratios) if ratios else None,
               "max_full_ratio": max(full_ratios) if full_ratios else None}  # fmt: skip
    if ratios:
        verdict = (f" (target ≤ {SEARCH_TARGET_MS} ms in the service: {ok(worst <= SEARCH_TARGET_MS)})" if target
                   else " (the ≤ 10 ms target is the service's; this adds HTTP, token auth and JSON)")
        out += [f"Median in ms (p95 at the largest size); a deep page starts in the middle of the result "
                f"(bookmark). Slowest median at {biggest}: {worst:.1f} ms{verdict}. Largest 1M÷10k: "
                f"{max(ratios):.2f}; among cases whose page is as full at 10k as at 1M: "
                f"{summary['max_full_ratio'] or 0:.2f} (target ≤ {RATIO_TARGET}). "
                f"† = at 10k the page holds fewer rows than at 1M (the small database has few matches), so the "
                f"ratio compares different work.", ""]  # fmt: skip
    return summary


def inbox_section(out: list[str]) -> None:
    after = {size: load("search", size) for size in SIZES}
    before = {size: load("search", size, ".before") for size in SIZES}
    if not after.get("1m"):
        return
    names = [r["name"] for r in after["1m"]["inbox"]]
    rows = []
    b1m = by_name(before["1m"]["inbox"]) if before.get("1m") else {}
    a10 = by_name(after["10k"]["inbox"]) if after.get("10k") else {}
    a1m = by_name(after["1m"]["inbox"])
    for name in names:
        r = a1m[name]
        rows.append([name, ms(a10.get(name, {}).get("median_ms")), ms(b1m.get(name, {}).get("median_ms")),
                     f"{ms(r['median_ms'])} ({ms(r['p95_ms'])})", f"{r.get('avg_rows', 0):.0f}"])  # fmt: skip
    users = {r["user"]: f"{r['username']} ({', '.join(r['groups'])})" for r in after["1m"]["inbox"]}
    out += ["### The web inbox's queries for plain users (service, newest first, 50 a page)", "",
            "Users at 1M: " + "; ".join(f"{k} = {v}" for k, v in users.items()) + ". "
            "\"All visible\" is `user_id = me OR user_group IN my groups`; legacy's only group was retired, "
            "so all of their runs are old.", "",
            table(["case", "10k", "1M before fix", "1M after fix (p95)", "rows"], rows), ""]  # fmt: skip


def http_inbox_section(out: list[str]) -> None:
    runs = {size: load("http", size) for size in SIZES}
    biggest = next((s for s in reversed(SIZES) if runs.get(s)), None)
    if not biggest:
        return
    named = {size: by_name(r["inbox"]) for size, r in runs.items() if r}
    rows, worst = [], 0.0
    for r in runs[biggest]["inbox"]:
        cells = [r["name"]]
        for size in SIZES:
            x = named.get(size, {}).get(r["name"])
            cells.append(ms(x["median_ms"]) + (f" ({ms(x['p95_ms'])})" if x and size == biggest else "") if x else "—")
        small = named.get("10k", {}).get(r["name"])
        if small:
            full = small.get("avg_rows", 0) >= r.get("avg_rows", 0)
            cells.append(f"{r['median_ms'] / small['median_ms']:.2f}" + ("" if full else "†"))
        else:
            cells.append("—")
        cells.append(f"{r.get('avg_rows', 0):.0f}")
        worst = max(worst, r["median_ms"])
        rows.append(cells)
    out += ["### Inbox page over HTTP (gunicorn, one request at a time, logged-in session)", "",
            table(["page", "10k", "100k", "1M (p95)", "1M÷10k", "rows at 1M"], rows), "",
            f"Slowest median at {biggest}: {worst:.1f} ms (target ≤ {RENDER_TARGET_MS} ms: "
            f"{ok(worst <= RENDER_TARGET_MS)}).", ""]  # fmt: skip


def pages_section(out: list[str]) -> None:
    pages = {size: load("pages", size) for size in SIZES}
    biggest = next((s for s in reversed(SIZES) if pages.get(s)), None)
    if not biggest:
        return
    p = pages[biggest]
    rows = [[c["page"], c["rows"], c["one"], c["many"], "same" if c["one"] == c["many"] else "**differs**"]
            for c in p["counts"]]  # fmt: skip
    out += [f"### Query counts (in process, {biggest} database)", "",
            table(["page", "rows shown", "queries at 1 row", "queries at many", ""], rows, align="llrrl"), "",
            "The inbox shows 50 rows a page, so its \"many\" is a full page of 50 (of 100 runs).", ""]  # fmt: skip
    rows = []
    named = {size: by_name([{**r, "name": r["page"]} for r in x["renders"]]) for size, x in pages.items() if x}
    for r in p["renders"]:
        cells = [r["page"]]
        for size in SIZES:
            x = named.get(size, {}).get(r["page"])
            cells.append(ms(x["median_ms"]) + (f" ({ms(x['p95_ms'])})" if x and size == biggest else "") if x else "—")
        cells.append(str(r["queries"]))
        rows.append(cells)
    inbox = [r["median_ms"] for r in p["renders"] if r["page"].startswith("inbox")]
    out += [f"### Page render times in process (django.test.Client, full middleware; user {p['user']}, "
            f"groups {', '.join(p['groups'])})", "",
            table(["page", "10k", "100k", "1M (p95)", "queries"], rows), "",
            f"Slowest inbox/search page median at {biggest}: {max(inbox):.1f} ms (target ≤ {RENDER_TARGET_MS} ms: "
            f"{ok(max(inbox) <= RENDER_TARGET_MS)}).", ""]  # fmt: skip


def throughput_section(out: list[str]) -> None:
    t = next((load("throughput", s) for s in reversed(SIZES) if load("throughput", s)), None)
    if not t:
        return
    ping, complete, api_ping = t["ping"], t["complete"], t.get("api_ping")
    rows = [["GET /bench/ping (trivial JSON view)", f"{ping['rps']:.0f}", ping["latency_avg"], "—"]]
    if api_ping:
        rows.append(["GET /bench/api/ping (ninja + token auth, trivial)", f"{api_ping['rps']:.0f}",
                     api_ping["latency_avg"], f"{api_ping['non_2xx']} non-2xx"])  # fmt: skip
    rows.append(["POST /api/v1/user-task-runs/…/complete", f"{complete['rps']:.0f}", complete["latency_avg"],
                 f"{complete.get('ok')} × 200, {complete.get('conflict')} × 409, {complete.get('other')} other"])
    check = t["check"]
    out += [f"### Throughput under gunicorn ({t['workers']} sync workers, wrk 2 threads × {t['connections']} "
            f"connections, {t['duration_s']} s each, {t['size']} database)", "",
            table(["endpoint", "req/s", "latency avg", "responses"], rows, align="lrrl"), "",
            f"complete ÷ trivial view = {t['ratio']:.1%} (target ≥ {THROUGHPUT_TARGET:.0%}: "
            f"{ok(t['ratio'] >= THROUGHPUT_TARGET)})"
            + (f"; ÷ the authenticated trivial API view = {t['ratio_api']:.1%}" if api_ping else "") + ". "
            f"Afterwards {check['done_runs']} runs DONE, {check['with_one_completed_event']} of them with exactly one "
            f"COMPLETED event, {check['done_without_exactly_one']} without, {check['events_on_open_runs']} events on "
            f"open runs. Callbacks: {t['callbacks']['delivered']} of {t['callbacks']['total']} delivered by the "
            f"worker in {t['callbacks']['seconds']} s.", ""]  # fmt: skip
    rows = []
    for key in t["rss_max_mb"]:
        rows.append([key, f"{t['rss_idle_mb'][key]:.0f}", f"{t['rss_after_load_mb'][key]:.0f}",
                     f"{t['rss_max_mb'][key]:.0f}"])  # fmt: skip
    worst = max(t["rss_max_mb"].values())
    out += ["### Resident memory (MB, VmRSS)", "", table(["process", "idle", "after the complete load", "max"], rows),
            "", f"Largest: {worst:.0f} MB (target ≤ {RSS_TARGET_MB} MB each: {ok(worst <= RSS_TARGET_MB)}).", ""]


def explain_section(out: list[str]) -> None:
    s = load("search", "1m")
    b = load("search", "1m", ".before")
    for label, run in (("after", s), ("before the fix", b)):
        if not run:
            continue
        for name, text in run["explain"].items():
            sql, _, plan = text.partition("\n\n")
            out += [f"#### EXPLAIN (ANALYZE, BUFFERS) at 1M, {label}: slowest case `{name}`", "", "```", plan.strip(),
                    "```", ""]  # fmt: skip


def runs_section(out: list[str]) -> None:
    rows = []
    for kind, suffix in (("search", ".before"), ("search", ""), ("pages", ""), ("http", ""), ("throughput", "")):
        for size in SIZES:
            r = load(kind, size, suffix)
            if r and size == (r.get("interleaved_with") or [size])[-1]:
                sizes = ", ".join(r.get("interleaved_with") or [size])
                rows.append([f"{kind}{suffix}", sizes, r.get("measured_at", "?"), str(r.get("machine_speed_ms", "—"))])
    if rows:
        out += ["### When the figures were taken", "",
                table(["benchmark", "sizes (interleaved)", "measured at", "machine speed (ms per 1M-step loop)"], rows,
                      align="lllr"), "",
                "The machine speed is the CPU time of a fixed Python loop at the end of each run (lower is faster): "
                "on this shared virtual machine it drifts, and absolute times drift with it.", ""]  # fmt: skip


def readme_tables() -> str:
    """The compact tables of README.md's Performance section."""
    out = []
    svc = {size: load("search", size) for size in SIZES}
    http = {size: load("http", size) for size in SIZES}
    before = load("search", "1m", ".before")
    if svc.get("1m") and svc.get("10k"):
        s = {size: by_name(r["service"]) for size, r in svc.items() if r}
        h = {size: by_name(r["api"]) for size, r in http.items() if r}
        b = by_name(before["service"]) if before else {}
        rows = []
        cases = list(dict.fromkeys(r["name"].rsplit(" ", 1)[0] for r in svc["1m"]["service"]))
        for case in cases:
            row = [case.replace(" +range", " + range")]
            for page in ("first", "deep"):
                name = f"{case} {page}"
                small, large = s["10k"].get(name), s["1m"].get(name)
                full = small and large and (small["avg_rows"] >= 99 or small["avg_rows"] >= large["avg_rows"])
                row += [ms(small and small["median_ms"]), ms(b.get(name, {}).get("median_ms")),
                        f"{ms(large['median_ms'])} ({ms(large['p95_ms'])})" if large else "—",
                        (f"{large['median_ms'] / small['median_ms']:.2f}" + ("" if full else "†")) if small and large
                        else "—"]  # fmt: skip
            for page in ("first", "deep"):
                name = f"{case} {page}"
                row.append(f"{ms(h.get('10k', {}).get(name, {}).get('median_ms'))} / "
                           f"{ms(h.get('1m', {}).get(name, {}).get('median_ms'))}")  # fmt: skip
            rows.append(row)
        out += [table(["filters", "first 10k", "first 1M before", "first 1M (p95)", "÷",
                       "deep 10k", "deep 1M before", "deep 1M (p95)", "÷", "API first 10k / 1M", "API deep 10k / 1M"],
                      rows), ""]  # fmt: skip
    return "\n".join(out)


def main() -> None:
    if "--readme" in sys.argv:
        print(readme_tables())
        return
    out = ["## Benchmark report (bench/report.py)", ""]
    runs_section(out)
    data_section(out)
    service = search_section(out, "search", "service", "Search through the service (selectors.search_user_task_runs)")
    inbox_section(out)
    search_section(out, "http", "api", "API search over HTTP (GET /api/v1/user-task-runs, token, limit 100)",
                   target=False)
    http_inbox_section(out)
    pages_section(out)
    throughput_section(out)
    explain_section(out)
    text = "\n".join(out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.md").write_text(text)
    print(text)
    if service:
        print(f"\n(service search: slowest median {service['worst_ms']:.1f} ms at the largest size)", file=sys.stderr)


if __name__ == "__main__":
    main()
