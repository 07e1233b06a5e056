"""Forms of a network's space: an import to upload, an announcement to write."""

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from geo.models import Department

from .models import Announcement, Network, ProductCategory

KIND_CHOICES = [("amap", _("des AMAP")), ("farm", _("des fermes")), ("partnership", _("des partenariats"))]


class ImportForm(forms.Form):
    file = forms.FileField(label=_("Fichier (.csv, .xlsx, .geojson, .gpkg)"))
    kind = forms.ChoiceField(label=_("Il contient"), choices=KIND_CHOICES)
    source = forms.SlugField(
        label=_("Nom de la source"),
        max_length=60,
        required=False,
        help_text=_("Le même pour les AMAP et les fermes d'un même tableau, pour que les liens se retrouvent."),
    )

    def __init__(self, *args, network: Network, **kwargs):
        super().__init__(*args, **kwargs)
        self.network = network

    def clean_source(self):
        return self.cleaned_data.get("source") or slugify(f"{self.network.slug}-import")[:60]


class AnnouncementForm(forms.Form):
    subject = forms.CharField(label=_("Objet"), max_length=200)
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 8}), max_length=20000)
    audiences = forms.MultipleChoiceField(
        label=_("Destinataires"),
        choices=Announcement.Audience.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=list(Announcement.Audience.values),
    )
    department = forms.ModelChoiceField(
        label=_("Département"), queryset=Department.objects.none(), required=False, empty_label=_("tout le territoire")
    )
    product = forms.ModelChoiceField(
        label=_("Produit"), queryset=ProductCategory.objects.all(), required=False, empty_label=_("tous les produits")
    )

    def __init__(self, *args, network: Network, **kwargs):
        super().__init__(*args, **kwargs)
        codes = list(network.departments.values_list("code", flat=True))
        regions = list(network.regions.values_list("code", flat=True))
        queryset = Department.objects.all() if not codes and not regions else Department.objects.filter(code__in=codes)
        if regions:
            queryset = queryset | Department.objects.filter(region_id__in=regions)
        self.fields["department"].queryset = queryset.defer("geom").order_by("code")
