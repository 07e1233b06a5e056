from django.urls import path

from . import views

app_name = "members"
urlpatterns = [
    path("amap/<int:amap_pk>/rejoindre/", views.join, name="join"),
    path("amap/<int:amap_pk>/membres/", views.member_list, name="member_list"),
    path("amap/<int:amap_pk>/membres/export.csv", views.member_export, name="member_export"),
    path("amap/<int:amap_pk>/membres/import/", views.member_import, name="member_import"),
    path("amap/<int:amap_pk>/membres/inviter/", views.member_invite, name="member_invite"),
    path("membre/<int:pk>/decision/", views.membership_decide, name="membership_decide"),
    path("amap/<int:amap_pk>/adhesions/", views.adhesions, name="adhesions"),
    path("amap/<int:amap_pk>/adherer/", views.adhesion_create, name="adhesion_create"),
    path("adhesion/<int:pk>/paiement/", views.adhesion_mark, name="adhesion_mark"),
    path("adhesion/<int:pk>/recu.pdf", views.adhesion_receipt, name="adhesion_receipt"),
    path("amap/<int:amap_pk>/messages/", views.message_list, name="message_list"),
    path("amap/<int:amap_pk>/messages/nouveau/", views.message_create, name="message_create"),
    path("message/<int:pk>/", views.message_detail, name="message_detail"),
    path("invitation/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("desinscription/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
