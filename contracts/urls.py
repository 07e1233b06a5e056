"""Contract pages, mounted at /contrats/ (every route here is in the permission matrix test)."""

from django.urls import path, re_path

from . import views

app_name = "contracts"
urlpatterns = [
    path("", views.contract_list, name="contract_list"),
    path("nouveau/", views.contract_create, name="contract_create"),
    path("charte/", views.charter, name="charter"),
    path("verifier/", views.verify, name="verify"),
    path("mes-livraisons/", views.my_deliveries, name="my_deliveries"),
    re_path(r"^calendrier/(?P<token>[0-9]+\.[A-Za-z0-9_-]+)\.ics$", views.ics_feed, name="ics_feed"),
    path("mes-donnees/", views.my_data, name="my_data"),
    re_path(r"^mes-donnees/export\.(?P<fmt>json|csv)$", views.my_data_export, name="my_data_export"),
    path("mes-donnees/effacement/", views.my_data_erase, name="my_data_erase"),
    # A contract (template): référents and AMAP admins run it, the farm sees it, members subscribe.
    path("<int:pk>/", views.contract_detail, name="contract_detail"),
    path("<int:pk>/modifier/", views.contract_edit, name="contract_edit"),
    path("<int:pk>/publier/", views.contract_publish, name="contract_publish"),
    path("<int:pk>/clore/", views.contract_close, name="contract_close"),
    path("<int:pk>/souscripteurs/", views.contract_subscribers, name="contract_subscribers"),
    path("<int:pk>/distributions/", views.contract_deliveries, name="contract_deliveries"),
    path("<int:pk>/bilans/", views.contract_summary, name="contract_summary"),
    re_path(r"^(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", views.contract_summary, name="contract_summary_export"),
    path("<int:pk>/souscrire/", views.subscription_create, name="subscription_create"),
    # One delivery date.
    path("distributions/<int:pk>/", views.delivery_sheet, name="delivery_sheet"),
    path("distributions/<int:pk>/feuille.pdf", views.delivery_sheet_pdf, name="delivery_sheet_pdf"),
    path("distributions/<int:pk>/preparation/", views.delivery_preparation, name="delivery_preparation"),
    path("distributions/<int:pk>/preparation.pdf", views.delivery_preparation_pdf, name="delivery_preparation_pdf"),
    path("distributions/<int:pk>/etat/", views.delivery_mark, name="delivery_mark"),
    # One member's subscription.
    path("souscriptions/<int:pk>/", views.subscription_detail, name="subscription_detail"),
    path("souscriptions/<int:pk>/modifier/", views.subscription_edit, name="subscription_edit"),
    path("souscriptions/<int:pk>/annuler/", views.subscription_cancel, name="subscription_cancel"),
    path("souscriptions/<int:pk>/avenant/", views.subscription_amend, name="subscription_amend"),
    path("souscriptions/<int:pk>/signer/", views.subscription_sign, name="subscription_sign"),
    path("souscriptions/<int:pk>/contresigner/", views.subscription_countersign, name="subscription_countersign"),
    path("souscriptions/<int:pk>/contrat.pdf", views.subscription_pdf, name="subscription_pdf"),
    path("souscriptions/<int:pk>/absences/", views.subscription_absences, name="subscription_absences"),
    path("absences/<int:pk>/annuler/", views.absence_cancel, name="absence_cancel"),
    # Summaries across contracts.
    path("amap/<int:pk>/bilans/", views.amap_summary, name="amap_summary"),
    re_path(r"^amap/(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", views.amap_summary, name="amap_summary_export"),
    path("ferme/<int:pk>/bilans/", views.farm_summary, name="farm_summary"),
    re_path(r"^ferme/(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", views.farm_summary, name="farm_summary_export"),
]
