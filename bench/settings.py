"""Benchmark-only settings: the project's settings plus bench/urls.py (a trivial JSON view to
compare throughput with) and a private static root. Used only by the scripts in bench/."""

from taskmanager.settings import *  # noqa: F401,F403
from taskmanager.settings import BASE_DIR, ALLOWED_HOSTS

ROOT_URLCONF = "bench.urls"
# The in-process client (django.test.Client) calls itself "testserver".
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# collectstatic goes here (bench/run_http.py does it), not into the project's staticfiles/.
STATIC_ROOT = BASE_DIR / "var" / "bench-static"
