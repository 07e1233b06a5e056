"""Forms behind the public pages: the search box and its filters."""

from django import forms
from django.contrib.gis.geos import Point
from django.utils.translation import gettext_lazy as _

from geo.coordinates import CoordinateError, parse_number, validate_lon_lat

from .models import Network, ProductCategory, Weekday

# Bounds people can reach from the page; the API keeps its own, stricter limits.
MIN_RADIUS_KM = 1
MAX_RADIUS_KM = 200
MAX_PAGE = 50
MAX_QUERY_LENGTH = 200


class SearchForm(forms.Form):
    """What a visitor typed (or the place they picked) and the filters on the results.

    The place comes either from the text `q` (the view geocodes it) or from a candidate
    link (`lon`, `lat`, `lieu`, with `q` set to `lieu`).
    """

    q = forms.CharField(
        label=_("Ville, code postal ou adresse"),
        max_length=MAX_QUERY_LENGTH,
        required=False,
        error_messages={"max_length": _("Le texte est trop long (%(limit_value)s caractères au plus).")},
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "placeholder": _("ex. Bordeaux, 33000, Lyon 7e")}
        ),
    )
    # Set by the "which place?" links; kept as text so a bad value gets our own message.
    lon = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    lat = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    lieu = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    products = forms.ModelMultipleChoiceField(
        label=_("Produits"),
        queryset=ProductCategory.objects.all(),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": _("Produit inconnu : « %(value)s »."),
            "invalid_pk_value": _("Produit inconnu : « %(pk)s »."),
        },
    )
    weekday = forms.TypedChoiceField(
        label=_("Jour de livraison"),
        choices=[("", _("n'importe quel jour")), *Weekday.choices],
        coerce=int,
        empty_value=None,
        required=False,
        error_messages={"invalid_choice": _("Jour de livraison inconnu : choisissez un jour de lundi à dimanche.")},
    )
    accepting = forms.BooleanField(label=_("Accepte de nouveaux membres"), required=False)
    radius_km = forms.FloatField(
        label=_("Rayon (km)"),
        min_value=MIN_RADIUS_KM,
        max_value=MAX_RADIUS_KM,
        required=False,
        localize=True,  # "12,5" as well as "12.5"
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 5}),
        error_messages={
            "invalid": _("Saisissez un nombre de kilomètres, par exemple 10."),
            "min_value": _("Le rayon doit être d'au moins %(limit_value)s km."),
            "max_value": _("Le rayon ne peut pas dépasser %(limit_value)s km."),
        },
    )
    network = forms.ModelChoiceField(
        label=_("Réseau"),
        queryset=Network.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label=_("tous les réseaux"),
        error_messages={"invalid_choice": _("Réseau inconnu : « %(value)s ».")},
    )
    page = forms.IntegerField(
        min_value=1,
        max_value=MAX_PAGE,
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _("Numéro de page invalide."),
            "min_value": _("Numéro de page invalide : les pages commencent à %(limit_value)s."),
            "max_value": _("Pas plus de %(limit_value)s pages de résultats : précisez le lieu ou les filtres."),
        },
    )

    def clean(self):
        cleaned = super().clean()
        lon, lat = cleaned.get("lon"), cleaned.get("lat")
        cleaned["point"] = None
        if lon or lat:
            if not (lon and lat):
                raise forms.ValidationError(_("Lieu incomplet : il faut une longitude et une latitude."))
            cleaned["point"] = self._point(lon, lat)
        if not (cleaned.get("q", "").strip() or cleaned["point"]):
            raise forms.ValidationError(_("Indiquez une ville, un code postal ou une adresse."))
        return cleaned

    @staticmethod
    def _point(lon: str, lat: str) -> Point:
        try:
            return validate_lon_lat(parse_number(lon), parse_number(lat), require_france=True)
        except CoordinateError as error:
            raise forms.ValidationError(_("Lieu invalide : %(reason)s.") % {"reason": error}) from error

    @property
    def has_filters(self) -> bool:
        """Whether the visitor asked for any filter (the filter panel then opens)."""
        data = self.data
        return any(data.get(name) for name in ("weekday", "accepting", "radius_km", "network")) or bool(
            data.getlist("products") if hasattr(data, "getlist") else data.get("products")
        )

    def filter_kwargs(self) -> dict:
        """The cleaned filters as keyword arguments of `directory.selectors.amaps_near`."""
        data = self.cleaned_data
        products = data.get("products")
        network = data.get("network")
        return {
            "products": [p.slug for p in products] if products else None,
            "weekday": data.get("weekday"),
            "accepting": True if data.get("accepting") else None,
            "radius_km": data.get("radius_km"),
            "network": network.slug if network else None,
        }
