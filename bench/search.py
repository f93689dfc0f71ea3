"""Search through the service (selectors.search_user_task_runs), every filter combination.

    python bench/search.py [10k 100k 1m] [--repeat 30] [--sets 5] [--before-fix]

For each of the 15 non-empty combinations of status, task type, user and group, without and
with a time range (30 days around the sampled run), it times the first page and a page deep in
the result (the bookmark of the run in the middle of the result, exactly as the service issues
it), limit 100, oldest first as the API pages: median, p95 and CPU time over `repeat` calls
that cycle through `sets` value sets drawn from random runs (see sample_value_sets). The actor
sees everything (a workflow engine's token, act_for_others).

Then the shapes the web inbox runs for plain users (newest first, 50 a page): "Assigned to me",
"Claimable", "All visible" (user_id = me OR user_group IN my groups), the last also with a
task-type filter; for a busy user (two groups, one of them big), a quiet one, and a member of
only the retired group (all of their runs are old).

The sizes are measured interleaved in one process (bench/router.py): every case runs at 10k,
then 100k, then 1M, round after round, so that other load on the machine weighs on all sizes
alike and the 1M ÷ 10k ratio means something. EXPLAIN (ANALYZE, BUFFERS) of the slowest case of
each part. Writes var/bench/search-<size>.json; bench/report.py turns them into tables.
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

from bench.generate import RETIRED_GROUP  # noqa: E402
from bench.common import REPO, Samples, load_average, machine_speed_ms, setup_django, size_label, stats_ms  # noqa: E402

COLUMNS = ("status", "user_task_def_name", "user_id", "user_group")
SHORT = {"status": "status", "user_task_def_name": "type", "user_id": "user", "user_group": "group"}
COMBOS = [combo for size in range(1, 5) for combo in combinations(COLUMNS, size)]
API_LIMIT = 100
INBOX_LIMIT = 50  # usertasks.views.PAGE_SIZE
RESULTS = REPO / "var" / "bench"


def combo_name(combo) -> str:
    return "+".join(SHORT[c] for c in combo)


def sample_value_sets(combo, ranged: bool, count: int, rng: random.Random, n: int) -> list[dict]:
    """Filters taken from random runs that have a value in every column of the combination.

    Candidates whose result fills a whole page (101 rows) come first, so that a page does the
    same work at 10k as at 1M wherever the small database allows it (at 10k a single user's
    runs of one type rarely fill a page); among those, common values come up as often as they
    do in the data (DONE, the big groups, the busy users).
    """
    from usertasks.models import UserTaskRun

    candidates = []
    for _attempt in range(50):
        ids = [rng.randint(1, n) for _ in range(100)]
        for row in UserTaskRun.objects.filter(pk__in=ids).values(*COLUMNS, "scheduled_time"):
            if any(row[c] is None for c in combo):
                continue
            filters = {c: row[c] for c in combo}
            if ranged:
                filters["earliest_start"] = row["scheduled_time"] - timedelta(days=15)
                filters["latest_start"] = row["scheduled_time"] + timedelta(days=15)
            candidates.append(filters)
        if len(candidates) >= 6 * count:
            break
    candidates = candidates[: 6 * count]

    def page_fill(filters: dict) -> int:
        qs = UserTaskRun.objects.filter(**{c: filters[c] for c in combo})
        if ranged:
            qs = qs.filter(scheduled_time__range=(filters["earliest_start"], filters["latest_start"]))
        return qs.order_by()[: API_LIMIT + 1].count()

    ranked = sorted(enumerate(candidates), key=lambda ic: (-page_fill(ic[1]), ic[0]))
    return [filters for _i, filters in ranked[:count]]


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


def before_fix() -> None:
    """Put back the search query of before the fixes in usertasks/selectors.py: every column of
    the run and its def, and visibility as one OR (user_id = me OR user_group IN my groups)."""
    from django.db.models import Q

    from usertasks import selectors
    from usertasks.models import UserTaskDef, UserTaskRun

    def or_first(qs, actor, exact, order, size):
        if not actor.sees_all:
            qs = qs.filter(Q(user_id=actor.name) | Q(user_group__in=sorted(actor.groups)))
        return qs.order_by(*order)[:size]

    selectors._visible_first = or_first
    selectors.SEARCH_RESULT_FIELDS = tuple(
        [f.name for f in UserTaskRun._meta.concrete_fields if not f.primary_key]
        + [f"user_task_def__{f.name}" for f in UserTaskDef._meta.concrete_fields if not f.primary_key]
    )


def explain(call, alias: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the main query the call runs."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from bench.router import using

    with using(alias), CaptureQueriesContext(connections[alias]) as ctx:
        call()
    sql = max(ctx.captured_queries, key=lambda q: float(q["time"]))["sql"]
    with connections[alias].cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cur.fetchall())
    return f"{sql}\n\n{plan}"


def run_interleaved(per_size: dict[str, list], repeat: int) -> dict[str, list[dict]]:
    """per_size: size -> [(name, fields, [callables])]. Each case is timed at every size in
    turn — round r calls 10k, 100k, 1m (rotated each round) — so that whatever else runs on
    the machine weighs on every size alike. Returns size -> rows (median/p95/cpu/rows)."""
    from bench.router import using

    sizes = list(per_size)
    by_name = {size: {name: (fields, calls) for name, fields, calls in cases} for size, cases in per_size.items()}
    names = list(dict.fromkeys(name for cases in per_size.values() for name, _f, _c in cases))
    rows: dict[str, list[dict]] = {size: [] for size in sizes}
    for name in names:
        present = [size for size in sizes if name in by_name[size]]
        samples = {size: Samples() for size in present}
        returned = {size: [] for size in present}
        for size in present:  # warm-up: every value set once
            with using(size):
                for call in by_name[size][name][1]:
                    call()
        deadline = time.perf_counter() + 20
        for r in range(repeat):
            for size in present[r % len(present):] + present[: r % len(present)]:
                calls = by_name[size][name][1]
                with using(size):
                    cpu, start = time.process_time(), time.perf_counter()
                    page = calls[r % len(calls)]()
                    samples[size].append(time.perf_counter() - start)
                    samples[size].cpu.append(time.process_time() - cpu)
                returned[size].append(len(page.results))
            if r >= 4 and time.perf_counter() > deadline:
                break
        line = []
        for size in present:
            median, p95 = stats_ms(samples[size])
            cpu, _ = stats_ms(samples[size].cpu)
            avg_rows = round(sum(returned[size]) / len(returned[size]), 1)
            rows[size].append({**by_name[size][name][0], "name": name, "median_ms": round(median, 3),
                               "p95_ms": round(p95, 3), "cpu_ms": round(cpu, 3), "samples": len(samples[size]),
                               "avg_rows": avg_rows, "load": round(load_average(), 1)})  # fmt: skip
            line.append(f"{size} {median:6.2f} ({avg_rows:.0f})")
        print(f"  {name:<40} " + "  ".join(line) + f"   load {load_average():.1f}", flush=True)
    return rows


def build_cases(size: str, args, before: bool):
    """The service cases and the inbox cases of one database, with the calls to EXPLAIN."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from usertasks import selectors
    from usertasks.actors import PERM_ACT_FOR_OTHERS, Actor
    from usertasks.filters import inbox_tabs, tab_search
    from usertasks.models import UserTaskRun

    n = UserTaskRun.objects.count()
    if n == 0:
        raise SystemExit(f"tm_bench_{size} is empty: run python bench/generate.py {size} first")
    rng = random.Random(args.seed)
    engine = Actor(name="wf-engine", permissions=frozenset({PERM_ACT_FOR_OTHERS}))

    def search_call(actor, filters, bookmark=None, limit=API_LIMIT, newest_first=False, require_filter=True):
        return lambda: selectors.search_user_task_runs(
            actor=actor, **filters, limit=limit, bookmark=bookmark, newest_first=newest_first,
            require_filter=require_filter,
        )  # fmt: skip

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

    # The web inbox for a plain user (DESIGN §7 visibility), newest first as the inbox shows it.
    User = get_user_model()
    ranked = [u["user_id"] for u in UserTaskRun.objects.filter(user_id__startswith="user-").values("user_id")
              .order_by().annotate(runs=Count("id")).order_by("-runs")[:400]]  # fmt: skip
    multi = [u for u in ranked[:50] if User.objects.get(username=u).groups.count() > 1]
    busy = multi[0] if multi else ranked[0]
    quiet = ranked[len(ranked) // 2]
    # A member of only the retired group (bench/generate.py): every run they see is old, so a
    # newest-first scan of the time index meets none of them for most of the table.
    legacy = (
        User.objects.filter(groups__name=RETIRED_GROUP).annotate(k=Count("groups")).filter(k=1)
        .order_by("username").values_list("username", flat=True).first()
    )  # fmt: skip
    inbox_cases = []
    type_name = UserTaskRun.objects.values_list("user_task_def_name", flat=True).order_by("id").first()
    for who, username in (("busy", busy), ("quiet", quiet), ("legacy", legacy)):
        if username is None:
            continue
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
    return n, cases, inbox_cases, explain_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", help="10k 100k 1m (default: all three)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--before-fix", action="store_true",
                        help="run the query shape the service had before bench/ (every column; the OR of "
                             "visibility) to compare; writes search-<size>.before.json")  # fmt: skip
    args = parser.parse_args()
    sizes = [size_label(s) for s in (args.sizes or ["10k", "100k", "1m"])]
    setup_django(*sizes)
    if args.before_fix:
        before_fix()
    from django.db import connections

    from bench.router import using

    built = {}
    for size in sizes:
        with using(size):
            built[size] = build_cases(size, args, args.before_fix)
    print(f"service search, 15 combinations x (no range, 30-day range) x (first, deep page), limit 100; "
          f"median ms (rows) at " + ", ".join(f"{s} = {built[s][0]:,} runs" for s in sizes))  # fmt: skip
    service = run_interleaved({s: built[s][1] for s in sizes}, args.repeat)
    print("the web inbox's shapes for plain users (newest first, limit 50)")
    inbox = run_interleaved({s: built[s][2] for s in sizes}, args.repeat)
    RESULTS.mkdir(parents=True, exist_ok=True)
    speed = machine_speed_ms()
    for size in sizes:
        n, _cases, _inbox_cases, explain_calls = built[size]
        slowest = max(service[size], key=lambda r: r["median_ms"])
        slowest_inbox = max(inbox[size], key=lambda r: r["median_ms"])
        plans = {
            slowest["name"]: explain(explain_calls[slowest["name"]], size),
            "inbox " + slowest_inbox["name"]: explain(explain_calls["inbox " + slowest_inbox["name"]], size),
        }
        if size == sizes[-1]:
            for name, plan in plans.items():
                print(f"\nEXPLAIN (ANALYZE, BUFFERS) at {size} — slowest: {name}\n{plan}")
        out = RESULTS / f"search-{size}{'.before' if args.before_fix else ''}.json"
        out.write_text(json.dumps({
            "machine_speed_ms": speed, "size": size, "runs": n, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "interleaved_with": sizes,
            "pg": connections[size].cursor().connection.info.server_version, "before_fix": args.before_fix,
            "service": service[size], "inbox": inbox[size], "explain": plans,
        }, indent=1, default=str))  # fmt: skip
        print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
