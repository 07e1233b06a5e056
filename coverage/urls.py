"""Routes of the coverage dashboard and of network creation."""

from django.urls import path

from . import views

app_name = "coverage"
urlpatterns = [
    path("reseau/<slug:slug>/couverture/", views.network_coverage, name="network_coverage"),
    path(
        "reseau/<slug:slug>/couverture/carte/<slug:layer>.geojson",
        views.network_coverage_layer,
        name="network_coverage_layer",
    ),
    path("reseau/<slug:slug>/couverture/etat/", views.network_coverage_status, name="network_coverage_status"),
    path(
        "reseau/<slug:slug>/couverture/<str:filename>",
        views.network_coverage_download,
        name="network_coverage_download",
    ),
    path("reseaux/nouveau/", views.network_new, name="network_new"),
]
