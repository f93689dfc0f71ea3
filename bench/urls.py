"""Benchmark-only URLs, served only under bench/settings.py: the whole project plus

- /bench/ping — the trivial JSON view that the throughput of `complete` is compared with
  (DESIGN §10): the full middleware stack, no database;
- /bench/api/ping — the same through django-ninja with the API's token authentication (what
  every API call pays before its own work);
- /bench/callback — a workflow's callback endpoint (204) for the worker to deliver to.
"""

from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from usertasks.api import TokenAuth

bench_api = NinjaAPI(urls_namespace="bench-api", auth=TokenAuth(), docs_url=None, openapi_url=None)


@bench_api.get("/ping")
def api_ping(request):
    return {"ok": True, "user": request.auth.name}


def ping(request):
    return JsonResponse({"ok": True})


@csrf_exempt
def callback(request):
    return HttpResponse(status=204)


urlpatterns = [
    path("bench/ping", ping),
    path("bench/api/", bench_api.urls),
    path("bench/callback", callback),
    path("", include("taskmanager.urls")),
]
