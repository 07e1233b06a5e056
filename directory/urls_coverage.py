"""Routes of the coverage dashboard and of network creation (included once by directory/urls.py)."""

from django.urls import path

from . import views_coverage

urlpatterns = [
    path("reseau/<slug:slug>/couverture/", views_coverage.network_coverage, name="network_coverage"),
    path(
        "reseau/<slug:slug>/couverture/<str:filename>",
        views_coverage.network_coverage_download,
        name="network_coverage_download",
    ),
    path("reseaux/nouveau/", views_coverage.network_new, name="network_new"),
]
