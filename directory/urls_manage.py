"""« Ma ferme » and « Mon AMAP » under /comptes/, in the `accounts` namespace (see config/urls.py)."""

from django.urls import path

from . import views_manage as views

urlpatterns = [
    path("ferme/nouvelle/", views.farm_edit, name="farm_create"),
    path("ferme/<int:pk>/", views.farm_edit, name="farm_edit"),
    path("amap/nouvelle/", views.amap_edit, name="amap_create"),
    path("amap/<int:pk>/", views.amap_edit, name="amap_edit"),
    path("amap/<int:pk>/equipe/", views.amap_team, name="amap_team"),
]
