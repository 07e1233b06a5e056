"""Forms of the matchmaking pages (the API has its own serializers; both call the same services)."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from directory.models import Network, ProductCategory, Weekday
from geo.models import Department

from .models import Annonce, SavedSearch


def _products(required=True, label=None):
    return forms.ModelMultipleChoiceField(
        label=label or _("Produits"),
        queryset=ProductCategory.objects.order_by("position", "name"),
        widget=forms.CheckboxSelectMultiple,
        required=required,
    )


class BoardFilterForm(forms.Form):
    """The board's filters; unknown values are reported, never ignored silently."""

    type = forms.ChoiceField(label=_("Type"), choices=[("", _("Toutes"))] + list(Annonce.Kind.choices), required=False)
    produit = forms.ChoiceField(label=_("Produit"), required=False)
    departement = forms.ChoiceField(label=_("Département"), required=False)
    reseau = forms.ChoiceField(label=_("Réseau"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["produit"].choices = [("", _("Tous"))] + list(
            ProductCategory.objects.order_by("position", "name").values_list("slug", "name")
        )
        self.fields["departement"].choices = [("", _("Tous"))] + [
            (code, f"{code} {name}") for code, name in Department.objects.order_by("code").values_list("code", "name")
        ]
        self.fields["reseau"].choices = [("", _("Tous"))] + list(
            Network.objects.order_by("name").values_list("slug", "name")
        )


class AnnonceForm(forms.Form):
    """One form for both kinds; the labels follow the publisher (a farm or an AMAP)."""

    title = forms.CharField(label=_("Titre"), max_length=200, required=False)
    products = _products()
    shares = forms.IntegerField(label=_("Nombre de parts"), min_value=1, max_value=10_000, required=False)
    delivery_weekdays = forms.TypedMultipleChoiceField(
        label=_("Jours de livraison possibles"),
        choices=Weekday.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    radius_km = forms.IntegerField(label=_("Distance maximale (km)"), min_value=1, max_value=300, initial=30)
    delivery_place = forms.CharField(label=_("Lieu de livraison"), max_length=300, required=False)
    start_date = forms.DateField(label=_("À partir du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    expires_on = forms.DateField(label=_("Expire le"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    description = forms.CharField(label=_("Présentation"), widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == Annonce.Kind.FARM_SEEKS_AMAP:
            del self.fields["delivery_place"]
            self.fields["products"].label = _("Produits proposés")
            self.fields["shares"].label = _("Nombre de parts que vous pouvez fournir")
            self.fields["radius_km"].label = _("Jusqu'où vous êtes prêt·e à livrer (km)")
            self.fields["delivery_weekdays"].help_text = _("Aucun coché : n'importe quel jour.")
        else:
            self.fields["products"].label = _("Produit recherché")
            self.fields["shares"].label = _("Nombre de foyers intéressés")
            self.fields["radius_km"].label = _("D'où la ferme peut venir, au plus (km)")
            self.fields["delivery_weekdays"].label = _("Jour de distribution")
            self.fields["delivery_weekdays"].help_text = _("Aucun coché : celui de l'AMAP.")
            self.fields["delivery_place"].help_text = _("Vide : le lieu de distribution de l'AMAP.")


class AnnonceStatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(s, label) for s, label in Annonce.Status.choices if s != Annonce.Status.EXPIRED]
    )


class ModerationForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Statut"),
        choices=[(Annonce.Status.PAUSED, _("mettre en pause")), (Annonce.Status.OPEN, _("rouvrir"))],
    )
    note = forms.CharField(label=_("Motif (visible par l'annonceur)"), max_length=300, required=False)


class ContactForm(forms.Form):
    recipient_type = forms.ChoiceField(choices=[("amap", "amap"), ("farm", "farm")], widget=forms.HiddenInput)
    recipient_id = forms.IntegerField(widget=forms.HiddenInput)
    body = forms.CharField(label=_("Votre message"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))


class PartnershipForm(forms.Form):
    counterpart_type = forms.ChoiceField(choices=[("amap", "amap"), ("farm", "farm")], widget=forms.HiddenInput)
    counterpart_id = forms.IntegerField(widget=forms.HiddenInput)
    shares = forms.IntegerField(label=_("Parts engagées"), min_value=1, required=False)


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Répondre"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))


class SavedSearchForm(forms.Form):
    target = forms.ChoiceField(label=_("Me prévenir des"), choices=SavedSearch.Target.choices)
    products = _products(required=False, label=_("Pour les produits (aucun : tous)"))
    place = forms.CharField(
        label=_("Autour de"), max_length=200, help_text=_("Une ville, un code postal, une adresse.")
    )
    radius_km = forms.IntegerField(label=_("Dans un rayon de (km)"), min_value=1, max_value=200, initial=20)

    def clean_place(self):
        from .services import place_geocode

        text = self.cleaned_data["place"].strip()
        try:
            place_geocode(text=text, field="place")
        except ValidationError as error:
            raise ValidationError(error.message_dict["place"]) from error
        return text
