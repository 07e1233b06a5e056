"""Contract pages, mounted at /contrats/ (every route here is in the permission matrix test)."""

from django.urls import path, re_path

from .views import deliveries, member, setup, signature, subscriptions

app_name = "contracts"
urlpatterns = [
    path("", setup.contract_list, name="contract_list"),
    path("nouveau/", setup.contract_create, name="contract_create"),
    path("charte/", signature.charter, name="charter"),
    path("verifier/", signature.verify, name="verify"),
    path("mes-livraisons/", member.my_deliveries, name="my_deliveries"),
    path("a-contresigner/", signature.countersign_list, name="countersign_list"),
    re_path(r"^calendrier/(?P<token>[0-9]+\.[A-Za-z0-9_-]+)\.ics$", member.ics_feed, name="ics_feed"),
    path("mes-donnees/", member.my_data, name="my_data"),
    re_path(r"^mes-donnees/export\.(?P<fmt>json|csv)$", member.my_data_export, name="my_data_export"),
    path("mes-donnees/effacement/", member.my_data_erase, name="my_data_erase"),
    # A contract (template): référents and AMAP admins run it, the farm sees it, members subscribe.
    path("<int:pk>/", setup.contract_detail, name="contract_detail"),
    path("<int:pk>/modifier/", setup.contract_edit, name="contract_edit"),
    path("<int:pk>/publier/", setup.contract_publish, name="contract_publish"),
    path("<int:pk>/clore/", setup.contract_close, name="contract_close"),
    path("<int:pk>/souscripteurs/", setup.contract_subscribers, name="contract_subscribers"),
    path("<int:pk>/distributions/", setup.contract_deliveries, name="contract_deliveries"),
    path("<int:pk>/bilans/", deliveries.contract_summary, name="contract_summary"),
    re_path(r"^(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", deliveries.contract_summary, name="contract_summary_export"),
    path("<int:pk>/souscrire/", subscriptions.subscription_create, name="subscription_create"),
    # One delivery date.
    path("distributions/<int:pk>/", deliveries.delivery_sheet, name="delivery_sheet"),
    path("distributions/<int:pk>/feuille.pdf", deliveries.delivery_sheet_pdf, name="delivery_sheet_pdf"),
    path("distributions/<int:pk>/preparation/", deliveries.delivery_preparation, name="delivery_preparation"),
    path(
        "distributions/<int:pk>/preparation.pdf", deliveries.delivery_preparation_pdf, name="delivery_preparation_pdf"
    ),
    path("distributions/<int:pk>/etat/", deliveries.delivery_mark, name="delivery_mark"),
    # One member's subscription.
    path("souscriptions/<int:pk>/", subscriptions.subscription_detail, name="subscription_detail"),
    path("souscriptions/<int:pk>/modifier/", subscriptions.subscription_edit, name="subscription_edit"),
    path("souscriptions/<int:pk>/annuler/", subscriptions.subscription_cancel, name="subscription_cancel"),
    path("souscriptions/<int:pk>/avenant/", subscriptions.subscription_amend, name="subscription_amend"),
    path("souscriptions/<int:pk>/signer/", signature.subscription_sign, name="subscription_sign"),
    path("souscriptions/<int:pk>/contresigner/", signature.subscription_countersign, name="subscription_countersign"),
    path("souscriptions/<int:pk>/contrat.pdf", subscriptions.subscription_pdf, name="subscription_pdf"),
    path("souscriptions/<int:pk>/absences/", subscriptions.subscription_absences, name="subscription_absences"),
    path("absences/<int:pk>/annuler/", subscriptions.absence_cancel, name="absence_cancel"),
    # Summaries across contracts.
    path("amap/<int:pk>/calendriers-universitaires/", setup.academic_calendars, name="academic_calendars"),
    path("amap/<int:pk>/bilans/", deliveries.amap_summary, name="amap_summary"),
    re_path(r"^amap/(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", deliveries.amap_summary, name="amap_summary_export"),
    path("fichiers/<uuid:token>/", deliveries.prepared_file, name="prepared_file"),
    path("fichiers/<uuid:token>/telecharger/", deliveries.prepared_file_download, name="prepared_file_download"),
    path("ferme/<int:pk>/bilans/", deliveries.farm_summary, name="farm_summary"),
    re_path(r"^ferme/(?P<pk>[0-9]+)/bilans/(?P<fmt>csv|pdf)/$", deliveries.farm_summary, name="farm_summary_export"),
]
