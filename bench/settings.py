"""Benchmark-only settings: the project's settings plus bench/urls.py (trivial views to compare
with), a private static root, and — when BENCH_DATABASES names sizes ("10k 100k 1m") — one
database alias per size with bench/router.py choosing among them. Used only by bench/."""

import os

import dj_database_url

from taskmanager.settings import *  # noqa: F401,F403
from taskmanager.settings import ALLOWED_HOSTS, BASE_DIR, DATABASES

ROOT_URLCONF = "bench.urls"
# The in-process client (django.test.Client) calls itself "testserver".
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# collectstatic goes here (bench/common.py does it), not into the project's staticfiles/.
STATIC_ROOT = BASE_DIR / "var" / "bench-static"

_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
for _label in os.environ.get("BENCH_DATABASES", "").split():
    DATABASES[_label] = {**dj_database_url.parse(f"{_SERVER}/tm_bench_{_label}"), "CONN_MAX_AGE": 600}
if os.environ.get("BENCH_DATABASES"):
    DATABASE_ROUTERS = ["bench.router.SizeRouter"]
