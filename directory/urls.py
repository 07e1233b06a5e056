from django.urls import path

from . import views, views_moderation, views_network

app_name = "directory"
urlpatterns = [
    path("", views.home, name="home"),
    path("recherche/", views.search, name="search"),
    path("amap/<int:pk>/", views.amap_detail, name="amap_detail"),
    path("ferme/<int:pk>/", views.farm_detail, name="farm_detail"),
    path("reseau/<slug:slug>/", views.network_detail, name="network_detail"),
    # The network's directory care (issue 14): claims, proposed changes, moderation, history.
    path("amap/<int:pk>/revendiquer/", views_moderation.entry_claim, {"kind": "amap"}, name="amap_claim"),
    path("ferme/<int:pk>/revendiquer/", views_moderation.entry_claim, {"kind": "ferme"}, name="farm_claim"),
    path("amap/<int:pk>/proposer/", views_moderation.entry_propose, {"kind": "amap"}, name="amap_propose"),
    path("ferme/<int:pk>/proposer/", views_moderation.entry_propose, {"kind": "ferme"}, name="farm_propose"),
    path("reseau/<slug:slug>/moderation/", views_moderation.network_moderation, name="network_moderation"),
    path("moderation/", views_moderation.moderation_all, name="moderation_all"),
    path("moderation/<int:pk>/", views_moderation.change_request_detail, name="change_request_detail"),
    path(
        "historique/<str:kind>/<str:key>/",
        views_moderation.entry_history,
        name="entry_history",
    ),
    path(
        "historique/<str:kind>/<str:key>/<int:history_id>/retablir/",
        views_moderation.entry_history_revert,
        name="entry_history_revert",
    ),
    # The network's space, for its coordinators (directory/views_network.py).
    path("reseau/<slug:slug>/gestion/", views_network.network_space, name="network_space"),
    path("reseau/<slug:slug>/gestion/equipe/", views_network.network_team, name="network_team"),
    path("reseau/<slug:slug>/gestion/export/<str:kind>.csv", views_network.network_export, name="network_export"),
    path("reseau/<slug:slug>/gestion/import/", views_network.network_import, name="network_import"),
    path("reseau/<slug:slug>/gestion/import/<int:pk>/", views_network.network_import_run, name="network_import_run"),
    path(
        "reseau/<slug:slug>/gestion/import/<int:pk>/etat/",
        views_network.network_import_status,
        name="network_import_status",
    ),
    path("reseau/<slug:slug>/gestion/annonces/", views_network.network_announcements, name="network_announcements"),
    path(
        "reseau/<slug:slug>/gestion/annonces/<int:pk>/",
        views_network.network_announcement_detail,
        name="network_announcement_detail",
    ),
    path("annonces-reseau/desinscription/<str:token>/", views_network.announcement_optout, name="announcement_optout"),
    path("fiche/verifier/<str:token>/", views_network.entry_verify, name="entry_verify"),
]
