"""The JSON API of DESIGN §4 (django-ninja). Issue 3 fills this in."""

from ninja import NinjaAPI

api = NinjaAPI(title="Taskmanager API", version="1", urls_namespace="api", docs_url="/docs")
