from django.urls import path

from . import views

app_name = "matching"
urlpatterns = [
    path("annonces/", views.board, name="board"),
    path("annonces/nouvelle/", views.annonce_create, name="annonce_create"),
    path("annonces/alertes/", views.alerts, name="alerts"),
    path("annonces/alertes/<int:pk>/supprimer/", views.alert_delete, name="alert_delete"),
    path("annonces/messages/<int:pk>/", views.thread_detail, name="thread_detail"),
    path("annonces/messages/<int:pk>/reponse/<str:token>/", views.thread_reply_link, name="thread_reply_link"),
    path("annonces/ferme/<int:pk>/tournees/", views.farm_tours, name="farm_tours"),
    path("annonces/<int:pk>/", views.annonce_detail, name="annonce_detail"),
    path("annonces/<int:pk>/modifier/", views.annonce_edit, name="annonce_edit"),
    path("annonces/<int:pk>/statut/", views.annonce_status, name="annonce_status"),
    path("annonces/<int:pk>/moderer/", views.annonce_moderate, name="annonce_moderate"),
    path("annonces/<int:pk>/contacter/", views.annonce_contact, name="annonce_contact"),
    path("annonces/<int:pk>/partenariat/", views.annonce_partnership, name="annonce_partnership"),
]
