"""Forms behind « Ma ferme » and « Mon AMAP »: the pages where people edit their farm or AMAP."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from geo.geocoding import place_geocode

from .models import Amap, Farm, ProductCategory, Weekday


def products_field(required: bool = True) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        label=_("Produits"),
        queryset=ProductCategory.objects.order_by("position", "name"),
        widget=forms.CheckboxSelectMultiple,
        required=required,
    )


class PlaceMixin:
    """An `address` text field that must geocode (the candidate is kept for the service)."""

    place_candidate = None

    def clean_address(self):
        text = (self.cleaned_data.get("address") or "").strip()
        if not text:
            return text
        try:
            self.place_candidate = place_geocode(text=text, field="address")
        except ValidationError as error:
            raise ValidationError(error.message_dict["address"]) from error
        return text


class FarmForm(PlaceMixin, forms.ModelForm):
    address = forms.CharField(
        label=_("Adresse de la ferme"),
        max_length=300,
        help_text=_("Elle reste privée : les cartes montrent un point approximatif (à quelques centaines de mètres)."),
    )
    products = products_field()
    labels = forms.MultipleChoiceField(
        label=_("Labels"), choices=Farm.Label.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Farm
        fields = [
            "name",
            "address",
            "products",
            "product_details",
            "labels",
            "delivery_radius_km",
            "capacity_shares",
            "description",
            "website",
            "contact_email",
            "private_email",
            "phone",
        ]
        help_texts = {
            "delivery_radius_km": _("Jusqu'où vous livrez, à vol d'oiseau."),
            "capacity_shares": _("Nombre de parts (paniers) que vous pouvez encore fournir ; 0 si aucune."),
        }


class AmapForm(PlaceMixin, forms.ModelForm):
    address = forms.CharField(label=_("Lieu de distribution"), max_length=300)
    products = products_field(required=False)
    delivery_weekdays = forms.TypedMultipleChoiceField(
        label=_("Jours de distribution"),
        choices=Weekday.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Amap
        fields = [
            "name",
            "address",
            "delivery_weekdays",
            "delivery_start",
            "delivery_end",
            "delivery_frequency",
            "delivery_notes",
            "products",
            "accepting_members",
            "member_count",
            "description",
            "website",
            "contact_email",
            "phone",
            "private_email",
        ]
        widgets = {
            "delivery_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "delivery_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("delivery_start"), cleaned.get("delivery_end")
        if start and end and end <= start:
            self.add_error("delivery_end", _("La fin de la distribution doit suivre son début."))
        return cleaned
