"""Geo endpoints under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("geocode/", api.GeocodeView.as_view(), name="api-geocode"),
    path("communes/", api.CommuneSearchView.as_view(), name="api-communes"),
]
