from django.urls import path

from . import views

app_name = "maps"
urlpatterns = [
    path("carte/", views.carte, name="carte"),
    path("carte/embed/", views.embed, name="embed"),
    path("carte/tuiles/<str:layer>/<int:z>/<int:x>/<int:y>.pbf", views.tile, name="tile"),
    path("carte/donnees/<str:layer>.geojson", views.geojson, name="geojson"),
    path("carte/donnees/<str:layer>.csv", views.csv_download, name="csv"),
    path("carte/territoires.geojson", views.territories, name="territories"),
    path("carte/departements.geojson", views.departments_outline, name="departments_outline"),
]
