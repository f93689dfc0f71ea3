"""Benchmark-only URLs: the whole project plus /bench/ping, the trivial JSON view that the
throughput of `complete` is compared with (DESIGN §10). Served only under bench/settings.py."""

from django.http import JsonResponse
from django.urls import include, path


def ping(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/ping", ping),
    path("", include("taskmanager.urls")),
]
