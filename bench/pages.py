"""Pages in process (django.test.Client, full middleware stack): query counts at 1 and 100 rows,
and render times at scale.

    python bench/pages.py 10k|100k|1m [--repeat 30]

Query counts (django.test.utils.CaptureQueriesContext) of each page showing 1 row and showing
many: the inbox (tabs "Assigned to me" and "All visible"; a full page is 50 rows), the inbox
search (six-filter form), the API search (limit=100), the task page (a run with 1 event / 100
events), the audit event list (filtered to a run with 1 / 100 events, limit=100) and the audit
run timeline. The rows come from fixtures made through the services in the benchmark database
(users bench-one and bench-hundred, def bench-form); they are recreated when missing.

Render times (median, p95 of `repeat` requests) at the database's scale for a busy plain user
of the biggest group: the three inbox tabs, first and deep page, and two searches; plus the
task page and the audit list. Writes var/bench/pages-<size>.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, ensure_static, setup_django, size_label, stats_ms, timed  # noqa: E402

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


def count_queries(client, url, **headers) -> tuple[int, int, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    return response.status_code, len(ctx.captured_queries), [q["sql"][:160] for q in ctx.captured_queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    label = size_label(args.size)
    setup_django(label)
    from django.contrib.auth.models import User
    from django.db.models import Count
    from django.test import Client

    from usertasks.models import ApiToken, UserTaskRun

    ensure_static()
    fx = fixtures()
    n = UserTaskRun.objects.count()
    clients, tokens = {}, {}
    for username in ("bench-one", "bench-hundred", "bench-admin"):
        user = User.objects.get(username=username)
        clients[username] = Client()
        clients[username].force_login(user)
        tokens[username] = ApiToken.issue(user, name="bench")[1]

    def task_url(run):
        return f"/tasks/{run.wf_run_id}/{run.user_task_guid}/"

    def audit_url(run):
        return f"/audit/runs/{run.wf_run_id}/{run.user_task_guid}/"

    pages = [  # (page, who shows 1 row, who shows many, url of 1, url of many, rows shown)
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
    print(f"{label}: {n:,} runs — query counts at 1 row and many")
    counts = []
    for name, who1, whon, url1, urln, shown in pages:
        row = {"page": name, "rows": shown}
        for key, who, url in (("one", who1, url1), ("many", whon, urln)):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens[who]}"} if url.startswith("/api/") else {}
            clients[who].get(url, **headers)  # warm: session, caches
            status, queries, sql = count_queries(clients[who], url, **headers)
            row[key] = queries
            row[f"{key}_status"] = status
            row[f"{key}_sql"] = sql
        counts.append(row)
        flag = "same" if row["one"] == row["many"] else "DIFFERENT"
        print(f"  {name:<32} {shown:>8} rows: {row['one']:>3} / {row['many']:>3} queries ({flag}; "
              f"HTTP {row['one_status']}/{row['many_status']})")  # fmt: skip

    # Render times at scale, for a busy plain user of the biggest group.
    ranked = (
        UserTaskRun.objects.exclude(user_id=None).exclude(user_id__startswith="bench-").values("user_id")
        .order_by().annotate(runs=Count("id")).order_by("-runs")[:50]
    )  # fmt: skip
    candidates = [r["user_id"] for r in ranked]
    busy = next((u for u in candidates if User.objects.get(username=u).groups.count() > 1), candidates[0])
    user = User.objects.get(username=busy)
    groups = sorted(user.groups.values_list("name", flat=True))
    clients[busy] = Client()
    clients[busy].force_login(user)
    tokens[busy] = ApiToken.issue(user, name="bench")[1]
    a_type = UserTaskRun.objects.filter(user_group=groups[0]).values_list("user_task_def_name", flat=True).first()
    some_run = UserTaskRun.objects.filter(user_group=groups[0], status="DONE").order_by("-id").first()
    timed_pages = [
        ("inbox: Assigned to me", busy, "/"),
        ("inbox: Claimable", busy, "/?tab=claimable"),
        ("inbox: All visible", busy, "/?tab=all"),
        ("inbox search: type", busy, "/?" + urlencode({"tab": "all", "user_task_def_name": a_type})),
        ("inbox search: status DONE + group", busy, "/?" + urlencode({"tab": "all", "status": "DONE", "user_group": groups[0]})),
        ("API search: group (limit 100)", busy, "/api/v1/user-task-runs?" + urlencode({"user_group": groups[0]})),
        ("task page", busy, task_url(some_run)),
        ("audit: events (50)", "bench-admin", "/audit/"),
    ]  # fmt: skip
    # A deep page: follow "Next page" links ten times from the first page.
    import re

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
    print(f"{label}: render times for {busy} ({', '.join(groups)})")
    renders = []
    for name, who, url in timed_pages:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens[who]}"} if url.startswith("/api/") else {}
        statuses = set()

        def get():
            statuses.add(clients[who].get(url, **headers).status_code)

        samples = timed(get, repeat=args.repeat, warmup=2, budget_s=20)
        median, p95 = stats_ms(samples)
        _status, queries, _sql = count_queries(clients[who], url, **headers)
        renders.append({"page": name, "url": url, "median_ms": round(median, 2), "p95_ms": round(p95, 2),
                        "queries": queries, "status": sorted(statuses)})  # fmt: skip
        print(f"  {name:<40} median {median:7.2f} ms  p95 {p95:7.2f} ms  {queries:>3} queries  HTTP {sorted(statuses)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"pages-{label}.json"
    out.write_text(json.dumps({"size": label, "runs": n, "user": busy, "groups": groups,
                               "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "counts": counts, "renders": renders}, indent=1))  # fmt: skip
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
