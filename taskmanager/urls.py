from django.contrib import admin
from django.urls import include, path

from usertasks.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", api.urls),
    path("audit/", include("usertasks.audit")),
    path("notifications/", include("usertasks.notifications")),
    path("", include("usertasks.urls")),
]
