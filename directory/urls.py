from django.urls import path

from . import views

app_name = "directory"
urlpatterns = [
    path("", views.home, name="home"),
    path("recherche/", views.search, name="search"),
    path("amap/<int:pk>/", views.amap_detail, name="amap_detail"),
    path("ferme/<int:pk>/", views.farm_detail, name="farm_detail"),
    path("reseau/<slug:slug>/", views.network_detail, name="network_detail"),
]
