"""Search over HTTP under gunicorn: the API with a token, and the inbox page with a session.

    python bench/http_search.py [10k 100k 1m] [--port 8811] [--repeat 15]

Starts one gunicorn per size (bench/settings.py, DEBUG off, one sync worker) on 127.0.0.1:<port>,
<port+1>, ... and times, one request at a time from this process (connect, request, whole
response read), each case at every size in turn (interleaved, as bench/search.py):

- GET /api/v1/user-task-runs for the same cases as bench/search.py (15 combinations, without and
  with a time range, first page and a deep page by bookmark; limit 100) as `bench-admin`'s
  token (a superuser: sees everything);
- GET / (the inbox, 50 rows a page, newest first) for three plain users logged in with a
  session — busy (two groups), quiet, legacy (only the retired group) — each tab, first page
  and a deep page, plus a search by task type and by status + group.

Stops the servers (their own pids) at the end. Writes var/bench/http-<size>.json.
"""

import argparse
import http.client
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO, bench_env, ensure_static, load_average, machine_speed_ms, setup_django, size_label, stats_ms,
)
from bench.search import COMBOS, INBOX_LIMIT, RESULTS, combo_name, deep_bookmark, sample_value_sets  # noqa: E402
from bench.throughput import VENV_BIN, free_port, wait_http  # noqa: E402


def get(port: int, path: str, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def rows_in(body: bytes) -> int:
    """Runs in a response: the API's results, or the inbox table's body rows."""
    if body.startswith(b"{"):
        return len(json.loads(body).get("results") or [])
    return max(0, body.count(b"<tr") - 1)


def to_query(filters: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in filters.items()}


def build_cases(size: str, args) -> tuple[int, list, list]:
    """(runs, API cases, inbox cases) of one database; a case is (name, fields, [paths], headers)."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db.models import Count
    from django.test import Client

    from usertasks.actors import PERM_ACT_FOR_OTHERS, Actor
    from usertasks.filters import inbox_tabs, tab_search
    from usertasks.models import ApiToken, UserTaskRun

    from bench.generate import RETIRED_GROUP

    n = UserTaskRun.objects.count()
    rng = random.Random(args.seed)
    engine = Actor(name="wf-engine", permissions=frozenset({PERM_ACT_FOR_OTHERS}))
    token = ApiToken.issue(User.objects.get(username="bench-admin"), name="bench http")[1]
    api_headers = {"Authorization": f"Bearer {token}", "Host": "127.0.0.1"}
    api_cases = []
    for combo in COMBOS:
        for ranged in (False, True):
            sets = sample_value_sets(combo, ranged, args.sets, rng, n)
            firsts = ["/api/v1/user-task-runs?" + urlencode(to_query(s)) for s in sets]
            deeps = []
            for s in sets:
                bookmark, _total = deep_bookmark(engine, s, 100)
                if bookmark:
                    deeps.append("/api/v1/user-task-runs?" + urlencode({**to_query(s), "bookmark": bookmark}))
            name = combo_name(combo) + (" +range" if ranged else "")
            fields = {"combo": combo_name(combo), "range": ranged}
            api_cases.append((name + " first", {**fields, "page": "first"}, firsts, api_headers))
            if deeps:
                api_cases.append((name + " deep", {**fields, "page": "deep"}, deeps, api_headers))

    ranked = [u["user_id"] for u in UserTaskRun.objects.filter(user_id__startswith="user-").values("user_id")
              .order_by().annotate(runs=Count("id")).order_by("-runs")[:400]]  # fmt: skip
    busy = next((u for u in ranked[:50] if User.objects.get(username=u).groups.count() > 1), ranked[0])
    quiet = ranked[len(ranked) // 2]
    legacy = (
        User.objects.filter(groups__name=RETIRED_GROUP).annotate(k=Count("groups")).filter(k=1)
        .order_by("username").values_list("username", flat=True).first()
    )  # fmt: skip
    inbox_cases = []
    for who, username in (("busy", busy), ("quiet", quiet), ("legacy", legacy)):
        if username is None:
            continue
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}",
                  "Host": "127.0.0.1"}  # fmt: skip
        actor = Actor.for_user(user)
        groups = sorted(actor.groups)
        a_type = UserTaskRun.objects.filter(user_group=groups[0]).values_list("user_task_def_name", flat=True).first()
        for tab in inbox_tabs(actor):
            searches = [({}, "")]
            if tab.slug == "all":
                searches += [({"user_task_def_name": a_type}, " search: type"),
                             ({"status": "DONE", "user_group": groups[0]}, " search: DONE + group")]  # fmt: skip
            for extra, suffix in searches:
                scoped_actor, arguments = tab_search(tab, actor, extra)
                query = {"tab": tab.slug, **extra}
                name = f"{who} {tab.label}{suffix}"
                fields = {"user": who, "username": username, "tab": tab.label, "search": suffix.strip()}
                inbox_cases.append((name + " first", {**fields, "page": "first"}, ["/?" + urlencode(query)], cookie))
                bookmark, _total = deep_bookmark(scoped_actor, arguments, INBOX_LIMIT, newest_first=True)
                if bookmark:
                    deep = "/?" + urlencode({**query, "bookmark": bookmark})
                    inbox_cases.append((name + " deep", {**fields, "page": "deep"}, [deep], cookie))
    return n, api_cases, inbox_cases


def run_interleaved(per_size: dict[str, list], ports: dict[str, int], repeat: int) -> dict[str, list[dict]]:
    """Like bench/search.py: each case at every size in turn, round after round."""
    sizes = list(per_size)
    by_name = {size: {c[0]: c for c in cases} for size, cases in per_size.items()}
    names = list(dict.fromkeys(c[0] for cases in per_size.values() for c in cases))
    rows: dict[str, list[dict]] = {size: [] for size in sizes}
    for name in names:
        present = [size for size in sizes if name in by_name[size]]
        samples = {size: [] for size in present}
        statuses = {size: set() for size in present}
        sizes_b = {size: [] for size in present}
        returned = {size: [] for size in present}
        for size in present:  # warm-up
            _n, _f, paths, headers = by_name[size][name]
            for path in paths:
                get(ports[size], path, headers)
        deadline = time.perf_counter() + 30
        for r in range(repeat):
            for size in present[r % len(present):] + present[: r % len(present)]:
                _n, _f, paths, headers = by_name[size][name]
                start = time.perf_counter()
                status, body = get(ports[size], paths[r % len(paths)], headers)
                samples[size].append(time.perf_counter() - start)
                statuses[size].add(status)
                sizes_b[size].append(len(body))
                returned[size].append(rows_in(body))
            if r >= 4 and time.perf_counter() > deadline:
                break
        line = []
        for size in present:
            median, p95 = stats_ms(samples[size])
            rows[size].append({**by_name[size][name][1], "name": name, "median_ms": round(median, 2),
                               "p95_ms": round(p95, 2), "status": sorted(statuses[size]),
                               "bytes": round(sum(sizes_b[size]) / len(sizes_b[size])), "samples": len(samples[size]),
                               "avg_rows": round(sum(returned[size]) / len(returned[size]), 1),
                               "load": round(load_average(), 1)})  # fmt: skip
            flag = "" if statuses[size] == {200} else f" HTTP {sorted(statuses[size])}"
            line.append(f"{size} {median:6.2f}{flag}")
        print(f"  {name:<44} " + "  ".join(line) + f"   load {load_average():.1f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", help="10k 100k 1m (default: all three)")
    parser.add_argument("--port", type=int, default=8811, help="first port; one gunicorn per size")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    sizes = [size_label(s) for s in (args.sizes or ["10k", "100k", "1m"])]
    ports = {size: args.port + i for i, size in enumerate(sizes)}
    for port in ports.values():
        free_port(port)
    setup_django(*sizes)
    ensure_static()
    from django.db import connections

    from bench.router import using

    built = {}
    for size in sizes:
        with using(size):
            built[size] = build_cases(size, args)
    for alias in connections:
        connections[alias].close()

    servers = {}
    try:
        for size in sizes:
            servers[size] = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "taskmanager.wsgi:application", "--bind", f"127.0.0.1:{ports[size]}",
                 "--workers", "1", "--log-level", "warning"],
                cwd=REPO, env=bench_env(size),
            )  # fmt: skip
        for size in sizes:
            wait_http(f"http://127.0.0.1:{ports[size]}/bench/ping")
        print("API search over HTTP (one gunicorn sync worker per size, one request at a time); median ms at "
              + ", ".join(f"{s} = {built[s][0]:,} runs" for s in sizes))  # fmt: skip
        api = run_interleaved({s: built[s][1] for s in sizes}, ports, args.repeat)
        print("inbox page over HTTP (logged-in session, 50 rows a page)")
        inbox = run_interleaved({s: built[s][2] for s in sizes}, ports, args.repeat)
    finally:
        for proc in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc in servers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    RESULTS.mkdir(parents=True, exist_ok=True)
    speed = machine_speed_ms()
    for size in sizes:
        out = RESULTS / f"http-{size}.json"
        out.write_text(json.dumps({"machine_speed_ms": speed, "size": size, "runs": built[size][0],
                                   "interleaved_with": sizes, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "api": api[size], "inbox": inbox[size]}, indent=1))  # fmt: skip
        print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
