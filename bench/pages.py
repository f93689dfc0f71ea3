"""Pages in process (django.test.Client, full middleware stack): query counts at 1 and 100 rows,
and render times at scale.

    python bench/pages.py [10k 100k 1m] [--repeat 30] [--only inbox]

Query counts (django.test.utils.CaptureQueriesContext) of each page showing 1 row and showing
many: the inbox (tabs "Assigned to me" and "All visible"; a full page is 50 rows), the inbox
search (six-filter form), the API search (limit=100), the task page (a run with 1 event / 100
events), the audit event list (filtered to a run with 1 / 100 events, limit=100) and the audit
run timeline. The rows come from fixtures made through the services in each benchmark database
(users bench-one and bench-hundred, def bench-form); they are made once and kept.

Render times (median, p95 and CPU of `repeat` requests, the sizes interleaved as in
bench/search.py) for a busy plain user of two groups: the three inbox tabs, first page and page
11, two searches, the API search, a task page, and the audit list unfiltered and filtered by task
type, by user and by group (the retired group: its events are all old). Writes
var/bench/pages-<size>.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO, Samples, ensure_static, load_average, machine_speed_ms, setup_django, size_label, stats_ms,
)

RESULTS = REPO / "var" / "bench"
BENCH_FIELDS = [
    {"name": "decision", "type": "STR", "required": True},
    {"name": "amount", "type": "DOUBLE", "required": False},
    {"name": "approved", "type": "BOOL", "required": False},
]


def fixtures() -> dict:
    """bench-one (1 run, 1 event), bench-hundred (100 runs; one of them with 100 events)."""
    from django.contrib.auth.models import Group, User

    from usertasks import services
    from usertasks.actors import SYSTEM
    from usertasks.models import UserTaskRun

    services.put_user_task_def(name="bench-form", fields=BENCH_FIELDS, actor=SYSTEM)
    out = {}
    for username, count in (("bench-one", 1), ("bench-hundred", 100)):
        group, _ = Group.objects.get_or_create(name=f"{username}-group")
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password("bench")
            user.save()
        user.groups.add(group)
        runs = UserTaskRun.objects.filter(user_id=username).order_by("id")
        for _ in range(count - runs.count()):
            services.start_user_task_run(
                user_task_def_name="bench-form", user_id=username, user_group=group.name,
                notes=f"bench fixture of {username}", actor=SYSTEM,
            )  # fmt: skip
        out[username] = list(runs.order_by("id"))
    busy = out["bench-hundred"][0]
    comments = busy.events.count() - 1
    for i in range(comments, 99):
        services.add_comment(run_id=busy.run_id, user_id="bench-hundred", comment=f"comment {i + 1}", actor=SYSTEM)
    assert out["bench-one"][0].events.count() == 1 and busy.events.count() == 100
    return {"one_run": out["bench-one"][0], "hundred_run": busy}


def count_queries(client, url, alias, **headers) -> tuple[int, int, list[str]]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[alias]) as ctx:
        response = client.get(url, **headers)
    return response.status_code, len(ctx.captured_queries), [q["sql"][:160] for q in ctx.captured_queries]


def prepare(size: str) -> dict:
    """Fixtures, clients and tokens of one database; the pages whose queries are counted and
    the pages that are timed."""
    import re

    from django.contrib.auth.models import User
    from django.db import transaction
    from django.db.models import Count
    from django.test import Client

    from usertasks.models import ApiToken, UserTaskRun

    from bench.generate import RETIRED_GROUP

    with transaction.atomic(using=size):
        fx = fixtures()
    n = UserTaskRun.objects.count()
    clients, tokens = {}, {}

    def login(username):
        user = User.objects.get(username=username)
        clients[username] = Client()
        clients[username].force_login(user)
        tokens[username] = ApiToken.issue(user, name="bench")[1]
        return user

    for username in ("bench-one", "bench-hundred", "bench-admin"):
        login(username)

    def task_url(run):
        return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/"

    def audit_url(run):
        return f"/audit/runs/{run.wf_run_id}/{run.user_task_guid}/"

    counted = [  # (page, who shows 1 row, who shows many, url of 1, url of many, rows shown)
        ("inbox: Assigned to me", "bench-one", "bench-hundred", "/", "/", "1 / 50"),
        ("inbox: All visible", "bench-one", "bench-hundred", "/?tab=all", "/?tab=all", "1 / 50"),
        ("inbox search (type + status)", "bench-one", "bench-hundred",
         "/?tab=all&user_task_def_name=bench-form&status=ASSIGNED",
         "/?tab=all&user_task_def_name=bench-form&status=ASSIGNED", "1 / 50"),
        ("API search, limit=100", "bench-one", "bench-hundred",
         "/api/v1/user-task-runs?user_task_def_name=bench-form&user_id=bench-one&limit=100",
         "/api/v1/user-task-runs?user_task_def_name=bench-form&user_id=bench-hundred&limit=100", "1 / 100"),
        ("task page (events)", "bench-one", "bench-hundred", task_url(fx["one_run"]), task_url(fx["hundred_run"]),
         "1 / 100"),
        ("audit: events, limit=100", "bench-admin", "bench-admin",
         "/audit/?" + urlencode({"wf_run": fx["one_run"].wf_run_id, "limit": 100}),
         "/audit/?" + urlencode({"wf_run": fx["hundred_run"].wf_run_id, "limit": 100}), "1 / 100"),
        ("audit: run timeline", "bench-admin", "bench-admin", audit_url(fx["one_run"]), audit_url(fx["hundred_run"]),
         "1 / 100"),
    ]  # fmt: skip

    # Timed at scale: a busy plain user of two groups.
    ranked = (
        UserTaskRun.objects.filter(user_id__startswith="user-").values("user_id")
        .order_by().annotate(runs=Count("id")).order_by("-runs")[:50]
    )  # fmt: skip
    candidates = [r["user_id"] for r in ranked]
    busy = next((u for u in candidates if User.objects.get(username=u).groups.count() > 1), candidates[0])
    user = login(busy)
    groups = sorted(user.groups.values_list("name", flat=True))
    a_type = UserTaskRun.objects.filter(user_group=groups[0]).values_list("user_task_def_name", flat=True).first()
    some_run = UserTaskRun.objects.filter(user_group=groups[0], status="DONE").order_by("-id").first()
    legacy_user = (
        UserTaskRun.objects.filter(user_group=RETIRED_GROUP).exclude(user_id=None).values_list("user_id", flat=True)
        .first()
    )  # fmt: skip
    timed_pages = [
        ("inbox: Assigned to me", busy, "/"),
        ("inbox: Claimable", busy, "/?tab=claimable"),
        ("inbox: All visible", busy, "/?tab=all"),
        ("inbox search: type", busy, "/?" + urlencode({"tab": "all", "user_task_def_name": a_type})),
        ("inbox search: status DONE + group", busy,
         "/?" + urlencode({"tab": "all", "status": "DONE", "user_group": groups[0]})),
        ("API search: group (limit 100)", busy, "/api/v1/user-task-runs?" + urlencode({"user_group": groups[0]})),
        ("task page", busy, task_url(some_run)),
        ("audit: events (50)", "bench-admin", "/audit/"),
        ("audit: events of a task type", "bench-admin", "/audit/?" + urlencode({"task_type": "incident-postmortem"})),
        ("audit: events of a user (retired group)", "bench-admin", "/audit/?" + urlencode({"user": legacy_user})),
        ("audit: events of the retired group", "bench-admin", "/audit/?" + urlencode({"group": RETIRED_GROUP})),
    ]  # fmt: skip
    # A deep page: follow "Next page" ten times from the first page.
    for name, who, url in list(timed_pages[:5]):
        deep = url
        for _ in range(10):
            html = clients[who].get(deep).content.decode()
            match = re.search(r'href="([^"]*bookmark=[^"]*)" rel="next"', html)
            if not match:
                break
            deep = match.group(1).replace("&amp;", "&")
        if deep != url:
            timed_pages.append((name + " (page 11)", who, deep))
    return {"n": n, "clients": clients, "tokens": tokens, "counted": counted, "timed": timed_pages,
            "user": busy, "groups": groups}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", help="10k 100k 1m (default: all three)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", metavar="TEXT", help="time only the pages whose name contains TEXT (e.g. inbox)")
    args = parser.parse_args()
    sizes = [size_label(s) for s in (args.sizes or ["10k", "100k", "1m"])]
    setup_django(*sizes)
    from bench.router import using

    ensure_static()
    prepared = {}
    for size in sizes:
        with using(size):
            prepared[size] = prepare(size)

    def headers(p, who, url):
        return {"HTTP_AUTHORIZATION": f"Bearer {p['tokens'][who]}"} if url.startswith("/api/") else {}

    counts = {size: [] for size in sizes}
    for size in sizes:
        p = prepared[size]
        print(f"{size}: {p['n']:,} runs — query counts at 1 row and many")
        with using(size):
            for name, who1, whon, url1, urln, shown in p["counted"]:
                row = {"page": name, "rows": shown}
                for key, who, url in (("one", who1, url1), ("many", whon, urln)):
                    client = p["clients"][who]
                    client.get(url, **headers(p, who, url))  # warm: session, caches
                    status, queries, sql = count_queries(client, url, size, **headers(p, who, url))
                    row[key], row[f"{key}_status"], row[f"{key}_sql"] = queries, status, sql
                counts[size].append(row)
                flag = "same" if row["one"] == row["many"] else "DIFFERENT"
                print(f"  {name:<32} {shown:>8} rows: {row['one']:>3} / {row['many']:>3} queries ({flag}; "
                      f"HTTP {row['one_status']}/{row['many_status']})")  # fmt: skip

    print("render times in process, interleaved across sizes: median ms (queries) — "
          + "; ".join(f"{s}: {prepared[s]['user']} ({', '.join(prepared[s]['groups'])})" for s in sizes))
    renders = {size: [] for size in sizes}
    names = list(dict.fromkeys(name for s in sizes for name, _w, _u in prepared[s]["timed"]))
    names = [name for name in names if not args.only or args.only in name]
    for name in names:
        present = [s for s in sizes if any(t[0] == name for t in prepared[s]["timed"])]
        calls, samples, statuses = {}, {}, {}
        for size in present:
            p = prepared[size]
            _n, who, url = next(t for t in p["timed"] if t[0] == name)
            calls[size] = (p["clients"][who], url, headers(p, who, url))
            samples[size], statuses[size] = Samples(), set()
            with using(size):
                for _ in range(2):  # warm-up
                    calls[size][0].get(url, **calls[size][2])
        deadline = time.perf_counter() + 25
        for r in range(args.repeat):
            for size in present[r % len(present):] + present[: r % len(present)]:
                client, url, hdrs = calls[size]
                with using(size):
                    cpu, start = time.process_time(), time.perf_counter()
                    statuses[size].add(client.get(url, **hdrs).status_code)
                    samples[size].append(time.perf_counter() - start)
                    samples[size].cpu.append(time.process_time() - cpu)
            if r >= 4 and time.perf_counter() > deadline:
                break
        line = []
        for size in present:
            client, url, hdrs = calls[size]
            with using(size):
                _status, queries, _sql = count_queries(client, url, size, **hdrs)
            median, p95 = stats_ms(samples[size])
            cpu, _ = stats_ms(samples[size].cpu)
            renders[size].append({"page": name, "url": url, "median_ms": round(median, 2), "p95_ms": round(p95, 2),
                                  "cpu_ms": round(cpu, 2), "queries": queries, "status": sorted(statuses[size]),
                                  "samples": len(samples[size]), "load": round(load_average(), 1)})  # fmt: skip
            flag = "" if statuses[size] == {200} else f" HTTP {sorted(statuses[size])}"
            line.append(f"{size} {median:6.1f} ({queries}){flag}")
        print(f"  {name:<42} " + "  ".join(line) + f"   load {load_average():.1f}", flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    speed = machine_speed_ms()
    for size in sizes:
        p = prepared[size]
        out = RESULTS / (f"pages-{size}.json" if not args.only else f"pages-{size}-only.json")
        out.write_text(json.dumps({"machine_speed_ms": speed, "size": size, "runs": p["n"], "user": p["user"],
                                   "groups": p["groups"],
                                   "interleaved_with": sizes, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "counts": counts[size], "renders": renders[size]}, indent=1))  # fmt: skip
        print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
