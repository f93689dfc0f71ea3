"""Throughput of POST .../complete over HTTP under gunicorn, beside a trivial JSON view, and the
resident memory of the web and worker processes.

    python bench/throughput.py [1m] [--port 8810] [--workers 2] [--connections 8] [--duration 15]

Against the benchmark database of that size (default 1m) it:

1. prepares a set of ASSIGNED runs of the def `bench-form` (one SQL statement; enough for the
   duration) and an API token of `bench-admin` (a superuser acting for the runs' users);
2. starts gunicorn (bench/settings.py: DEBUG off, the project's URLs plus /bench/ping) on
   127.0.0.1:<port> with <workers> sync workers, and the worker (`manage.py run_worker`);
3. runs wrk (Debian package `wrk`) for <duration> s against /bench/ping, then against
   .../complete with bench/complete.lua (every run completed once; 200s, 409s and runs left
   over are counted), <connections> connections on 2 threads; checks afterwards that each 200
   made exactly one COMPLETED event; the gunicorn workers' CPU time per request of each phase
   (/proc/<pid>/stat, so comparable between runs on a shared machine where req/s is not);
4. completes another 500 runs whose WfRun has a callback_url (/bench/callback on the same
   server) and lets the worker deliver the callbacks, timing it;
5. samples the RSS of every gunicorn process and of the worker all along (every 0.5 s).

Everything listens on and talks to 127.0.0.1 only; both servers are stopped (by their own
process ids) at the end, also on errors. Writes var/bench/throughput-<size>.json.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, bench_env, ensure_static, machine_speed_ms, setup_django, size_label  # noqa: E402

RESULTS = REPO / "var" / "bench"
VENV_BIN = Path(sys.executable).parent
BODY_RESULTS = {"decision": "approve", "amount": 12.5, "approved": True}


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class RssSampler(threading.Thread):
    """Max and last RSS of the gunicorn master, each of its workers and the task worker."""

    def __init__(self, web_pid: int, worker_pid: int):
        super().__init__(daemon=True)
        self.web_pid, self.worker_pid = web_pid, worker_pid
        self.max = {"web master": 0.0, "web worker": 0.0, "task worker": 0.0}
        self.last = dict(self.max)
        self.stop = threading.Event()

    def sample(self) -> None:
        worker_pids = [self.worker_pid, *children(self.worker_pid)]
        now = {
            "web master": rss_mb(self.web_pid) or 0.0,
            "web worker": max((rss_mb(p) or 0.0 for p in children(self.web_pid)), default=0.0),
            "task worker": max((rss_mb(p) or 0.0 for p in worker_pids), default=0.0),
        }
        for key, value in now.items():
            self.max[key] = max(self.max[key], value)
        self.last = now

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; 0 for a vanished one)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def measured(web_pid: int, args: list[str]) -> dict:
    """wrk, plus the gunicorn workers' CPU time per request (ms) while it ran."""
    pids = children(web_pid)
    before = cpu_seconds(pids)
    result = wrk(args)
    seconds = cpu_seconds(pids) - before
    requests = re.search(r"(\d+) requests in", result.get("raw", ""))
    count = int(requests.group(1)) if requests else 0
    result["requests"] = count
    result["cpu_ms_per_request"] = round(seconds * 1000 / count, 2) if count else None
    return result


def free_port(port: int) -> None:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is in use on 127.0.0.1; pick another with --port")


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def prepare_runs(count: int, prefix: str, callback_url: str = "") -> list[tuple[str, str, str]]:
    """`count` ASSIGNED runs of bench-form (each in its own WfRun) with their first event."""
    from django.db import connection, transaction

    from usertasks import services
    from usertasks.actors import SYSTEM

    from bench.pages import BENCH_FIELDS

    udef, _ = services.put_user_task_def(name="bench-form", fields=BENCH_FIELDS, actor=SYSTEM)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            WITH w AS (
                INSERT INTO usertasks_wfrun (id, callback_url, created_at)
                SELECT %(prefix)s || g, %(callback)s, now() FROM generate_series(1, %(count)s) g RETURNING id
            ), r AS (
                INSERT INTO usertasks_usertaskrun (user_task_guid, user_task_def_name, status, user_id, user_group,
                    results, notes, scheduled_time, epoch, actions, updated_at, user_task_def_id, wf_run_id)
                SELECT md5(w.id), 'bench-form', 'ASSIGNED', 'bench-worker-' || (abs(hashtext(w.id)) %% 20),
                    'bench-workers', '{}', '', now(), 1, '[]', now(), %(def_id)s, w.id FROM w
                RETURNING id, user_id
            )
            INSERT INTO usertasks_usertaskevent (time, type, actor, payload, user_task_run_id)
            SELECT now(), 'ASSIGNED', 'system', jsonb_build_object('old_user_id', null, 'old_user_group', null,
                'new_user_id', r.user_id, 'new_user_group', 'bench-workers'), r.id FROM r
            """,
            {"prefix": prefix, "callback": callback_url, "count": count, "def_id": udef.pk},
        )
        cur.execute(
            "SELECT wf_run_id, user_task_guid, user_id FROM usertasks_usertaskrun WHERE wf_run_id LIKE %s ORDER BY id",
            [prefix + "%"],
        )
        return cur.fetchall()


def remove_runs(prefixes: list[str]) -> None:
    """Delete the prepared runs and everything they made, so the benchmark data stays as generated."""
    from django.db import connection, transaction

    runs = "SELECT id FROM usertasks_usertaskrun WHERE " + " OR ".join(["wf_run_id LIKE %s"] * len(prefixes))
    params = [p + "%" for p in prefixes]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"DELETE FROM usertasks_callbackattempt WHERE delivery_id IN "
                    f"(SELECT id FROM usertasks_callbackdelivery WHERE user_task_run_id IN ({runs}))", params)
        for table in ("usertasks_callbackdelivery", "usertasks_usertaskevent", "usertasks_scheduledaction",
                      "usertasks_notification"):
            cur.execute(f"DELETE FROM {table} WHERE user_task_run_id IN ({runs})", params)
        cur.execute("DELETE FROM usertasks_usertaskrun WHERE " + " OR ".join(["wf_run_id LIKE %s"] * len(prefixes)),
                    params)
        cur.execute("DELETE FROM usertasks_wfrun WHERE " + " OR ".join(["id LIKE %s"] * len(prefixes)), params)
    connection.close()


def completion_check(prefix: str) -> dict:
    """Every DONE run has exactly one COMPLETED event, and no other run has one."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE r.status = 'DONE'),
                   count(*) FILTER (WHERE r.status = 'DONE' AND e.n = 1),
                   count(*) FILTER (WHERE r.status = 'DONE' AND coalesce(e.n, 0) <> 1),
                   count(*) FILTER (WHERE r.status <> 'DONE' AND e.n > 0),
                   coalesce(sum(e.n), 0)
            FROM usertasks_usertaskrun r
            LEFT JOIN (SELECT user_task_run_id, count(*) AS n FROM usertasks_usertaskevent
                       WHERE type = 'COMPLETED' GROUP BY 1) e ON e.user_task_run_id = r.id
            WHERE r.wf_run_id LIKE %s
            """,
            [prefix + "%"],
        )
        done, one_event, wrong, stray, events = cur.fetchone()
    connection.close()
    return {"done_runs": done, "with_one_completed_event": one_event, "done_without_exactly_one": wrong,
            "events_on_open_runs": stray, "completed_events": int(events)}  # fmt: skip


def write_requests(runs, path: Path) -> None:
    with path.open("w") as f:
        for wf_run_id, guid, user_id in runs:
            body = json.dumps({"user_id": user_id, "results": BODY_RESULTS}, separators=(",", ":"))
            f.write(f"/api/v1/user-task-runs/{wf_run_id}/{guid}/complete\t{body}\n")


def wrk(args: list[str]) -> dict:
    out = subprocess.run(["wrk", *args], capture_output=True, text=True, timeout=600).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = re.search(r"Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", out)
    counts = re.search(r"COMPLETE ok=(\d+) conflict=(\d+) other=(\d+) exhausted=(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result = {"rps": rps, "latency_avg": latency.group(1) if latency else None,
              "latency_max": latency.group(3) if latency else None,
              "socket_errors": errors.group(1) if errors else "", "raw": out}  # fmt: skip
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    if counts:
        result.update(zip(("ok", "conflict", "other", "exhausted"), map(int, counts.groups())))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size", nargs="?", default="1m")
    parser.add_argument("--port", type=int, default=8810)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--runs", type=int, default=8000, help="runs prepared for the complete phase")
    args = parser.parse_args()
    label = size_label(args.size)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    free_port(args.port)
    setup_django(label)
    ensure_static()
    from django.contrib.auth.models import User
    from django.db import connection

    from usertasks.models import ApiToken, CallbackDelivery

    token = ApiToken.issue(User.objects.get(username="bench-admin"), name="bench throughput")[1]
    stamp = time.strftime("%H%M%S")
    runs = prepare_runs(args.runs, f"tp{stamp}-")
    cb_runs = prepare_runs(500, f"cb{stamp}-", f"http://127.0.0.1:{args.port}/bench/callback")
    connection.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    requests_file = RESULTS / f"complete-requests-{args.port}.tsv"
    cb_requests_file = RESULTS / f"complete-callback-requests-{args.port}.tsv"
    write_requests(runs, requests_file)
    write_requests(cb_runs, cb_requests_file)

    env = bench_env(label)
    base = f"http://127.0.0.1:{args.port}"
    web = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "taskmanager.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--log-level", "warning"],
        cwd=REPO, env=env,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--no-reload", "--interval", "1", "-v", "0"], cwd=REPO, env=env
    )
    sampler = None
    result = {"machine_speed_ms": machine_speed_ms(), "size": label, "workers": args.workers,
              "connections": args.connections, "duration_s": args.duration,
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": os.getloadavg()[0]}  # fmt: skip
    try:
        wait_http(base + "/bench/ping")
        sampler = RssSampler(web.pid, worker.pid)
        sampler.sample()
        result["rss_idle_mb"] = dict(sampler.last)
        sampler.start()
        common = ["-t2", f"-c{args.connections}", "--latency"]
        wrk([*common, "-d3s", base + "/bench/ping"])  # warm every worker
        print(f"wrk {args.duration}s, {args.connections} connections, gunicorn {args.workers} sync workers:")
        ping = measured(web.pid, [*common, f"-d{args.duration}s", base + "/bench/ping"])
        print(f"  GET /bench/ping            {ping['rps']:8.1f} req/s  (latency avg {ping['latency_avg']}; "
              f"{ping['cpu_ms_per_request']} ms CPU/request)")
        auth = ["-H", f"Authorization: Bearer {token}"]
        api_ping = measured(web.pid, [*common, f"-d{args.duration}s", *auth, base + "/bench/api/ping"])
        print(f"  GET /bench/api/ping        {api_ping['rps']:8.1f} req/s  (latency avg {api_ping['latency_avg']}; "
              f"{api_ping['non_2xx']} non-2xx; {api_ping['cpu_ms_per_request']} ms CPU/request)")  # fmt: skip
        complete = measured(web.pid, [*common, f"-d{args.duration}s", "-s", str(REPO / "bench" / "complete.lua"), base, "--",
                        str(requests_file), token, "2"])  # fmt: skip
        print(f"  POST .../complete          {complete['rps']:8.1f} req/s  (latency avg {complete['latency_avg']}; "
              f"{complete.get('ok')} ok, {complete.get('conflict')} 409, {complete.get('other')} other, "
              f"{complete.get('exhausted')} after the runs ran out; {complete['cpu_ms_per_request']} ms CPU/request)")  # fmt: skip
        time.sleep(2)  # requests still in a worker when wrk stopped
        check = completion_check(f"tp{stamp}-")
        result.update(ping=ping, api_ping=api_ping, complete=complete, check=check,
                      ratio=round(complete["rps"] / ping["rps"], 3),
                      ratio_api=round(complete["rps"] / api_ping["rps"], 3))  # fmt: skip
        print(f"  complete ÷ ping = {result['ratio']:.1%}, ÷ api ping = {result['ratio_api']:.1%};  {check}")
        result["rss_after_load_mb"] = dict(sampler.last)

        # The worker at work: 500 completes that each owe the workflow a callback.
        started = time.time()
        cb = wrk(["-t2", f"-c{args.connections}", "-d10s", "-s", str(REPO / "bench" / "complete.lua"), base, "--",
                  str(cb_requests_file), token, "2"])  # fmt: skip
        cb_prefix = f"cb{stamp}-"
        deliveries = CallbackDelivery.objects.filter(user_task_run__wf_run__id__startswith=cb_prefix)
        deadline = time.time() + 180
        while time.time() < deadline and deliveries.exclude(status="DELIVERED").exists():
            time.sleep(0.5)
        connection.close()
        delivered = deliveries.filter(status="DELIVERED").count()
        result["callbacks"] = {"completed": cb.get("ok"), "delivered": delivered, "total": deliveries.count(),
                               "seconds": round(time.time() - started, 1)}  # fmt: skip
        print(f"  callbacks: {delivered} of {deliveries.count()} delivered by the worker in "
              f"{result['callbacks']['seconds']} s (from the first complete)")  # fmt: skip
        sampler.sample()
        result["rss_max_mb"] = dict(sampler.max)
        result["rss_end_mb"] = dict(sampler.last)
        print("  RSS (MB)  idle / after complete load / max: " + "; ".join(
            f"{k} {result['rss_idle_mb'][k]:.0f} / {result['rss_after_load_mb'][k]:.0f} / {sampler.max[k]:.0f}"
            for k in sampler.max))  # fmt: skip
    finally:
        if sampler:
            sampler.stop.set()
        for proc in (web, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for f in (requests_file, cb_requests_file):
            f.unlink(missing_ok=True)
        remove_runs([f"tp{stamp}-", f"cb{stamp}-"])
    for part in ("ping", "api_ping", "complete"):
        result[part].pop("raw", None)
    out = RESULTS / f"throughput-{label}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
