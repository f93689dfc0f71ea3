from django.urls import path

from . import views

app_name = "usertasks"
task = "tasks/<str:wf_run_id>/<str:user_task_guid>/"
urlpatterns = [
    path("", views.inbox, name="home"),
    path(task, views.task_detail, name="task"),
    path(task + "save/", views.task_results, {"action": "save"}, name="task_save"),
    path(task + "complete/", views.task_results, {"action": "complete"}, name="task_complete"),
    path(task + "claim/", views.task_claim, name="task_claim"),
    path(task + "release/", views.task_release, name="task_release"),
    path(task + "comments/", views.comment_add, name="comment_add"),
    path(task + "comments/<int:comment_id>/edit/", views.comment_edit, name="comment_edit"),
    path(task + "comments/<int:comment_id>/delete/", views.comment_delete, name="comment_delete"),
]
