from django.urls import path

from . import views

app_name = "usertasks"
urlpatterns = [
    path("", views.home, name="home"),
]
