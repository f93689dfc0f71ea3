from django.apps import AppConfig


class UserTasksConfig(AppConfig):
    name = "usertasks"
    verbose_name = "User tasks"
    default_auto_field = "django.db.models.BigAutoField"
