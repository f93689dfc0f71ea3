"""Audit trail for managers (DESIGN §8): /audit/. Issue 5 fills this in."""

app_name = "audit"
urlpatterns: list = []
