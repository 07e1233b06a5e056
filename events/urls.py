"""Shift and event pages, mounted at /evenements/ (every route here is in tests/events/test_permissions.py)."""

from django.urls import path

from . import views

app_name = "events"
urlpatterns = [
    # Distribution shifts of an AMAP.
    path("amap/<int:pk>/permanences/", views.shift_list, name="shift_list"),
    path("amap/<int:pk>/permanences/inscription/", views.shift_signup, name="shift_signup"),
    path("amap/<int:pk>/permanences/besoins/", views.shift_settings, name="shift_settings"),
    path("amap/<int:pk>/permanences/relance/", views.shift_ask, name="shift_ask"),
    path("permanences/<int:pk>/retrait/", views.shift_withdraw, name="shift_withdraw"),
    path("permanences/<int:pk>/echange/", views.shift_offer, name="shift_offer"),
    path("permanences/<int:pk>/reprendre/", views.shift_take, name="shift_take"),
    # Events and calendars.
    path("amap/<int:pk>/agenda/", views.amap_calendar, name="amap_calendar"),
    path("amap/<int:pk>/agenda.ics", views.amap_ics, name="amap_ics"),
    path("amap/<int:pk>/nouveau/", views.amap_event_create, name="amap_event_create"),
    path("reseau/<int:pk>/agenda.ics", views.network_ics, name="network_ics"),
    path("reseau/<int:pk>/nouveau/", views.network_event_create, name="network_event_create"),
    path("<int:pk>/", views.event_detail, name="event_detail"),
    path("<int:pk>/reponse/", views.event_answer, name="event_answer"),
    # Its organisers (those who may create it): edit, cancel with a reason.
    path("<int:pk>/modifier/", views.event_edit, name="event_edit"),
    path("<int:pk>/annuler/", views.event_cancel, name="event_cancel"),
]
