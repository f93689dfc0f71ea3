"""Shared by the benchmark scripts: database per size, Django set-up, timing statistics.

Every benchmark database lives on the local server, one per size:
postgres://postgres@127.0.0.1:5432/tm_bench_10k, tm_bench_100k, tm_bench_1m
(override the server with BENCH_PG, e.g. BENCH_PG=postgres://postgres@127.0.0.1:55432).
"""

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# Benchmarks run as production does (DEBUG off: no query log, no debug pages) with a bench-only
# secret, plain-http cookies and the /bench/ping view of bench/urls.py.
BENCH_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DJANGO_LOG_LEVEL": "WARNING",
    "TASKMANAGER_CALLBACK_SECRET": "bench-only-callback-secret",
}


def size_label(text: str) -> str:
    label = text.lower()
    if label not in SIZES:
        raise SystemExit(f"size must be one of {', '.join(SIZES)}; got {text!r}")
    return label


def db_name(label: str) -> str:
    return f"tm_bench_{label}"


def db_url(label: str) -> str:
    return f"{SERVER}/{db_name(label)}"


def bench_env(label: str) -> dict:
    """The environment of a Django process (manage.py, gunicorn, worker) on that database."""
    env = {**os.environ, **BENCH_ENV, "DATABASE_URL": db_url(label)}
    env.pop("BENCH_DATABASES", None)
    return env


def setup_django(label: str, *others: str) -> None:
    """Configure Django in this process for the benchmark database of that size (the default
    alias); every size given is also an alias of its own (bench/router.py)."""
    os.environ.update({k: v for k, v in bench_env(label).items() if k in BENCH_ENV or k == "DATABASE_URL"})
    os.environ["BENCH_DATABASES"] = " ".join((label, *others))
    import django

    django.setup()


def stats_ms(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds of durations in seconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p95 * 1000


class Samples(list):
    """Wall-clock durations (seconds) of the calls; `.cpu` holds this process's CPU time of each
    (less sensitive than wall time to other programs competing for the cores)."""

    def __init__(self):
        super().__init__()
        self.cpu: list[float] = []


def timed(fn, *, repeat: int, warmup: int = 2, budget_s: float = 20.0) -> Samples:
    """Durations of `repeat` calls of fn (after `warmup` untimed ones), stopping early when the
    time budget is spent (but never with fewer than 5 samples)."""
    for _ in range(warmup):
        fn()
    samples, deadline = Samples(), time.perf_counter() + budget_s
    for i in range(repeat):
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        samples.cpu.append(time.process_time() - cpu)
        if i >= 4 and time.perf_counter() > deadline:
            break
    return samples


def load_average() -> float:
    return os.getloadavg()[0]


def table(headers: list[str], rows: list[list], *, align: str | None = None) -> str:
    """A Markdown table; `align` is one letter per column, l or r (default: first l, rest r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    text = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in text]
    return "\n".join(lines)


def ensure_static() -> None:
    """collectstatic into var/bench-static once: with DEBUG off the pages need the manifest."""
    from django.conf import settings
    from django.core.management import call_command

    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", "--noinput", verbosity=0)


def machine_speed_ms() -> float:
    """CPU time of a fixed pure-Python loop (best of 3): how fast this machine is right now. On a
    shared virtual machine it drifts with the neighbours; results carry it to be read with it."""
    best = float("inf")
    for _ in range(3):
        start, total = time.process_time(), 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - start)
    return round(best * 1000, 1)
