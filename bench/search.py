"""Search through the service (selectors.search_user_task_runs), every filter combination.

    python bench/search.py 10k|100k|1m [--repeat 30] [--sets 5]

For each of the 15 non-empty combinations of status, task type, user and group, without and
with a time range (30 days around the sampled run), it times the first page and a page deep in
the result (the bookmark of the run in the middle of the result, exactly as the service issues
it), limit 100, oldest first as the API pages: median and p95 over `repeat` calls that cycle
through `sets` value sets drawn from random runs (so common values — DONE, the big groups, the
busy users — come up as often as they do in the data). The actor sees everything (a workflow
engine's token, act_for_others).

Then the shapes the web inbox runs for a plain user (newest first, 50 a page): "Assigned to
me", "Claimable", "All visible" (user_id = me OR user_group IN my groups), the last one also
with a task-type filter; for a busy user of the biggest group (two groups) and a quiet one.

EXPLAIN (ANALYZE, BUFFERS) of the slowest case of each part. Writes var/bench/search-<size>.json;
bench/report.py turns the files into tables.
"""

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, SIZES, setup_django, size_label, stats_ms, timed  # noqa: E402

COLUMNS = ("status", "user_task_def_name", "user_id", "user_group")
SHORT = {"status": "status", "user_task_def_name": "type", "user_id": "user", "user_group": "group"}
COMBOS = [combo for size in range(1, 5) for combo in combinations(COLUMNS, size)]
API_LIMIT = 100
INBOX_LIMIT = 50  # usertasks.views.PAGE_SIZE
RESULTS = REPO / "var" / "bench"


def combo_name(combo) -> str:
    return "+".join(SHORT[c] for c in combo)


def sample_value_sets(combo, ranged: bool, count: int, rng: random.Random, n: int) -> list[dict]:
    """Filters taken from random runs that have a value in every column of the combination."""
    from usertasks.models import UserTaskRun

    sets = []
    while len(sets) < count:
        ids = [rng.randint(1, n) for _ in range(50)]
        rows = UserTaskRun.objects.filter(pk__in=ids).values(*COLUMNS, "scheduled_time")
        for row in rows:
            if any(row[c] is None for c in combo):
                continue
            filters = {c: row[c] for c in combo}
            if ranged:
                filters["earliest_start"] = row["scheduled_time"] - timedelta(days=15)
                filters["latest_start"] = row["scheduled_time"] + timedelta(days=15)
            sets.append(filters)
            if len(sets) == count:
                break
    return sets


def deep_bookmark(actor, filters: dict, limit: int, newest_first: bool = False) -> tuple[str | None, int]:
    """The bookmark that leads to the page starting in the middle of the result, and the total."""
    from usertasks import selectors

    qs = selectors.visible_runs(actor).filter(**{k: v for k, v in filters.items() if k in COLUMNS})
    if filters.get("earliest_start"):
        qs = qs.filter(scheduled_time__gte=filters["earliest_start"])
    if filters.get("latest_start"):
        qs = qs.filter(scheduled_time__lte=filters["latest_start"])
    total = qs.count()
    if total < 2:
        return None, total
    order = ("-scheduled_time", "-id") if newest_first else ("scheduled_time", "id")
    middle = qs.order_by(*order)[total // 2 - 1]
    # Exactly what the service hands out after a page that ends with this run.
    return selectors._encode_bookmark(middle, newest_first), total


def explain(call) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the main query the call runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        call()
    sql = max(ctx.captured_queries, key=lambda q: float(q["time"]))["sql"]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cur.fetchall())
    return f"{sql}\n\n{plan}"


def run_cases(cases, repeat: int) -> list[dict]:
    """cases: (name, fields dict, [callables]) -> rows with median/p95/rows returned."""
    rows = []
    for name, fields, calls in cases:
        counter = iter(range(10**9))
        returned = []

        def one():
            page = calls[next(counter) % len(calls)]()
            returned.append(len(page.results))

        samples = timed(one, repeat=repeat, warmup=len(calls), budget_s=15)
        median, p95 = stats_ms(samples)
        rows.append({**fields, "name": name, "median_ms": round(median, 3), "p95_ms": round(p95, 3),
                     "samples": len(samples), "avg_rows": round(sum(returned) / len(returned), 1)})  # fmt: skip
        print(f"  {name:<44} median {median:7.2f} ms  p95 {p95:7.2f} ms  ({rows[-1]['avg_rows']:.0f} rows)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    label = size_label(args.size)
    setup_django(label)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count

    from usertasks import selectors
    from usertasks.actors import PERM_ACT_FOR_OTHERS, Actor
    from usertasks.filters import inbox_tabs, tab_search
    from usertasks.models import UserTaskRun

    n = UserTaskRun.objects.count()
    if n == 0:
        raise SystemExit(f"tm_bench_{label} is empty: run python bench/generate.py {label} first")
    rng = random.Random(args.seed)
    engine = Actor(name="wf-engine", permissions=frozenset({PERM_ACT_FOR_OTHERS}))

    def search_call(actor, filters, bookmark=None, limit=API_LIMIT, newest_first=False, require_filter=True):
        return lambda: selectors.search_user_task_runs(
            actor=actor, **filters, limit=limit, bookmark=bookmark, newest_first=newest_first,
            require_filter=require_filter,
        )  # fmt: skip

    print(f"{label}: {n:,} runs — service search, 15 combinations x (no range, 30-day range) x (first, deep page)")
    cases, explain_calls = [], {}
    for combo in COMBOS:
        for ranged in (False, True):
            sets = sample_value_sets(combo, ranged, args.sets, rng, n)
            firsts = [search_call(engine, s) for s in sets]
            deeps, totals = [], []
            for s in sets:
                bookmark, total = deep_bookmark(engine, s, API_LIMIT)
                totals.append(total)
                if bookmark:
                    deeps.append(search_call(engine, s, bookmark))
            name = combo_name(combo) + (" +range" if ranged else "")
            fields = {"combo": combo_name(combo), "range": ranged, "avg_total": round(sum(totals) / len(totals))}
            cases.append((name + " first", {**fields, "page": "first"}, firsts))
            explain_calls[name + " first"] = firsts[0]
            if deeps:
                cases.append((name + " deep", {**fields, "page": "deep"}, deeps))
                explain_calls[name + " deep"] = deeps[0]
    service_rows = run_cases(cases, args.repeat)

    # The web inbox for a plain user (DESIGN §7 visibility), newest first as the inbox shows it.
    User = get_user_model()
    users = (
        UserTaskRun.objects.exclude(user_id=None).values("user_id").order_by().annotate(runs=Count("id")).order_by("-runs")
    )
    ranked = [u["user_id"] for u in users[:400]]
    multi = [u for u in ranked[:50] if User.objects.get(username=u).groups.count() > 1]
    busy = multi[0] if multi else ranked[0]
    quiet = ranked[len(ranked) // 2]
    inbox_cases = []
    type_name = UserTaskRun.objects.values_list("user_task_def_name", flat=True).order_by("id").first()
    for who, username in (("busy", busy), ("quiet", quiet)):
        actor = Actor.for_user(User.objects.get(username=username))
        for tab in inbox_tabs(actor):
            for extra in ({}, {"user_task_def_name": type_name}) if tab.slug == "all" else ({},):
                scoped_actor, arguments = tab_search(tab, actor, extra)
                name = f"{who} {tab.label}" + (" +type" if extra else "")
                first = search_call(scoped_actor, arguments, limit=INBOX_LIMIT, newest_first=True, require_filter=False)
                bookmark, total = deep_bookmark(scoped_actor, arguments, INBOX_LIMIT, newest_first=True)
                fields = {"user": who, "username": username, "groups": sorted(actor.groups), "tab": tab.label,
                          "filter": "type" if extra else "", "total": total}  # fmt: skip
                inbox_cases.append((name + " first", {**fields, "page": "first"}, [first]))
                explain_calls["inbox " + name + " first"] = first
                if bookmark:
                    deep = search_call(scoped_actor, arguments, bookmark, INBOX_LIMIT, True, False)
                    inbox_cases.append((name + " deep", {**fields, "page": "deep"}, [deep]))
                    explain_calls["inbox " + name + " deep"] = deep
    print(f"{label}: web inbox shapes for plain users {busy} ({', '.join(sorted(Actor.for_user(User.objects.get(username=busy)).groups))}) and {quiet}")
    inbox_rows = run_cases(inbox_cases, args.repeat)

    slowest = max(service_rows, key=lambda r: r["median_ms"])
    slowest_inbox = max(inbox_rows, key=lambda r: r["median_ms"])
    plans = {
        slowest["name"]: explain(explain_calls[slowest["name"]]),
        "inbox " + slowest_inbox["name"]: explain(explain_calls["inbox " + slowest_inbox["name"]]),
    }
    for name, plan in plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) — slowest: {name}\n{plan}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"search-{label}.json"
    out.write_text(json.dumps({
        "size": label, "runs": n, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "pg": connection.cursor().connection.info.server_version,
        "service": service_rows, "inbox": inbox_rows, "explain": plans,
    }, indent=1, default=str))  # fmt: skip
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
