"""Benchmark-only URLs: the whole project plus two trivial views, served only under
bench/settings.py: /bench/ping, the trivial JSON view that the throughput of `complete` is
compared with (DESIGN §10), and /bench/callback, a workflow's callback endpoint (204) for the
worker to deliver to."""

from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


def ping(request):
    return JsonResponse({"ok": True})


@csrf_exempt
def callback(request):
    return HttpResponse(status=204)


urlpatterns = [
    path("bench/ping", ping),
    path("bench/callback", callback),
    path("", include("taskmanager.urls")),
]
