from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .actors import Actor
from .selectors import visible_runs


@login_required
def home(request):
    actor = Actor.for_user(request.user)
    runs = visible_runs(actor).select_related("user_task_def").order_by("-scheduled_time", "-id")[:50]
    return render(request, "usertasks/home.html", {"runs": runs})
