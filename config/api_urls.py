"""Everything under /api/v1/: each app lists its own endpoints in `api_urls.py`."""

from django.urls import include, path

urlpatterns = [
    path("", include("geo.api_urls")),
    path("", include("directory.api_urls")),
    path("", include("coverage.api_urls")),
    path("", include("matching.api_urls")),
    path("", include("contracts.api_urls")),
]
