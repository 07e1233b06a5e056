"""Forms of the coverage dashboard (radius, product, threshold) and of emerging networks."""

from django import forms
from django.utils.translation import gettext_lazy as _

from directory.models import Network, ProductCategory
from geo.models import Department, Region

from . import figures


class DecimalCommaFloatField(forms.FloatField):
    """A float typed the French way ("7,5") or the English way ("7.5")."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
        return super().to_python(value)


class CoverageForm(forms.Form):
    radius_km = DecimalCommaFloatField(
        label=_("Rayon (km)"),
        required=False,
        initial=figures.RADIUS_KM_DEFAULT,
        min_value=figures.RADIUS_KM_MIN,
        max_value=figures.RADIUS_KM_MAX,
        error_messages={
            "invalid": _("Le rayon doit être un nombre de kilomètres, par exemple 10 ou 7,5."),
            # Same bounds as figures.RADIUS_KM_MIN / RADIUS_KM_MAX, written the French way.
            "min_value": _("Le rayon doit être d'au moins 0,5 km."),
            "max_value": _("Le rayon ne peut pas dépasser 50 km."),
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 5}),
    )
    product = forms.ModelChoiceField(
        label=_("Produit"),
        queryset=ProductCategory.objects.order_by("position", "name"),
        to_field_name="slug",
        required=False,
        empty_label=_("(aucun produit en particulier)"),
        error_messages={"invalid_choice": _("Produit inconnu : choisissez un produit de la liste.")},
    )
    min_population = forms.IntegerField(
        label=_("Zones blanches à partir de (habitants)"),
        required=False,
        initial=figures.MIN_POPULATION_DEFAULT,
        min_value=0,
        max_value=figures.MIN_POPULATION_MAX,
        error_messages={
            "invalid": _("Le seuil de population doit être un nombre entier d'habitants."),
            "min_value": _("Le seuil de population ne peut pas être négatif."),
            "max_value": _("Le seuil de population ne peut pas dépasser %(limit_value)s habitants."),
        },
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 7}),
    )
    carte = forms.ChoiceField(
        label=_("Carte"),
        required=False,
        choices=[
            ("distance", _("distance à l'AMAP la plus proche")),
            ("density", _("AMAP pour 100 000 habitants")),
            ("population", _("habitants par commune")),
        ],
        error_messages={"invalid_choice": _("Choix de carte inconnu.")},
    )

    def params(self) -> dict:
        """Validated values with the defaults filled in (call after is_valid())."""
        data = self.cleaned_data
        return {
            "radius_km": data.get("radius_km") if data.get("radius_km") is not None else figures.RADIUS_KM_DEFAULT,
            "product": data["product"].slug if data.get("product") else None,
            "min_population": data.get("min_population")
            if data.get("min_population") is not None
            else figures.MIN_POPULATION_DEFAULT,
            "mode": data.get("carte") or None,  # None: distances, or population when no AMAP yet
        }


class NetworkCreateForm(forms.Form):
    name = forms.CharField(label=_("Nom du réseau"), max_length=200)
    level = forms.ChoiceField(
        label=_("Échelon"),
        choices=[c for c in Network.Level.choices if c[0] != Network.Level.NATIONAL],
        initial=Network.Level.REGIONAL,
    )
    status = forms.ChoiceField(label=_("Statut"), choices=Network.Status.choices, initial=Network.Status.EMERGING)
    regions = forms.ModelMultipleChoiceField(
        label=_("Régions"), queryset=Region.objects.order_by("name"), required=False, to_field_name="code"
    )
    departments = forms.ModelMultipleChoiceField(
        label=_("Départements"), queryset=Department.objects.order_by("code"), required=False, to_field_name="code"
    )
    territory_file = forms.FileField(
        label=_("ou un fichier GeoJSON du territoire (polygone, longitude/latitude WGS84)"), required=False
    )
    territory_geojson = forms.CharField(
        label=_("ou le GeoJSON collé ici"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    description = forms.CharField(label=_("Présentation"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    MAX_FILE_BYTES = 5 * 1024 * 1024

    def clean_territory_file(self):
        upload = self.cleaned_data.get("territory_file")
        if upload and upload.size > self.MAX_FILE_BYTES:
            raise forms.ValidationError(_("Le fichier dépasse 5 Mo : simplifiez le polygone."))
        return upload

    def territory_text(self) -> str | None:
        upload = self.cleaned_data.get("territory_file")
        if upload:
            raw = upload.read()
            try:
                return raw.decode("utf-8-sig")
            except UnicodeDecodeError as error:
                raise forms.ValidationError(
                    {"territory_file": _("Le fichier n'est pas du texte UTF-8 : un GeoJSON est attendu.")}
                ) from error
        return (self.cleaned_data.get("territory_geojson") or "").strip() or None
