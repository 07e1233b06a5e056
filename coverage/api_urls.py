"""Coverage endpoints under /api/v1/ (next to the directory's `networks/`)."""

from django.urls import path

from .api import NetworkCoverageView, NetworkWhiteZonesView

urlpatterns = [
    path("networks/<slug:slug>/coverage/", NetworkCoverageView.as_view(), name="api-network-coverage"),
    path("networks/<slug:slug>/white-zones/", NetworkWhiteZonesView.as_view(), name="api-network-white-zones"),
]
