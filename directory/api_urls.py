"""Directory endpoints under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("amaps/", api.AmapViewSet.as_view({"get": "list"}), name="api-amap-list"),
    path("amaps/<int:pk>/", api.AmapViewSet.as_view({"get": "retrieve"}), name="api-amap-detail"),
    path("farms/", api.FarmViewSet.as_view({"get": "list"}), name="api-farm-list"),
    path("farms/<int:pk>/", api.FarmViewSet.as_view({"get": "retrieve"}), name="api-farm-detail"),
    path("networks/", api.NetworkViewSet.as_view({"get": "list"}), name="api-network-list"),
    path("networks/<slug:slug>/", api.NetworkViewSet.as_view({"get": "retrieve"}), name="api-network-detail"),
    path(
        "product-categories/",
        api.ProductCategoryViewSet.as_view({"get": "list"}),
        name="api-product-category-list",
    ),
]
