"""Admin for the directory: AMAPs, farms, networks and partnerships, with map widgets.

Staff see (and may edit) a farm's exact location here; the public masked point is shown
read-only and recomputed on save.
"""

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from directory.models import Amap, AmapManager, Farm, Network, Partnership, ProductCategory, Weekday
from geo.admin import AtlasGISAdmin


def _checkboxes(db_field, choices) -> forms.Field:
    """An array of choices as checkboxes instead of a comma-separated text box."""
    coerce = int if isinstance(choices[0][0], int) else str
    return forms.TypedMultipleChoiceField(
        choices=choices,
        coerce=coerce,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=db_field.verbose_name.capitalize(),
        help_text=db_field.help_text,
    )


class DepartmentFilter(admin.RelatedFieldListFilter):
    """Filter on the commune's département, titled in French."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("département")


@admin.register(ProductCategory)
class ProductCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "family", "position")
    list_filter = ("family",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("position", "name")


class AmapManagerInline(admin.TabularInline):
    model = AmapManager
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name_plural = _("gestionnaires (administrateur·rices et référent·es)")


class AmapPartnershipInline(admin.TabularInline):
    model = Partnership
    fk_name = "amap"
    fields = ("farm", "product", "since", "until", "is_active", "source")
    autocomplete_fields = ("farm", "product")
    extra = 0
    verbose_name_plural = _("fermes partenaires")


class FarmPartnershipInline(admin.TabularInline):
    model = Partnership
    fk_name = "farm"
    fields = ("amap", "product", "since", "until", "is_active", "source")
    autocomplete_fields = ("amap", "product")
    extra = 0
    verbose_name_plural = _("AMAP partenaires")


@admin.register(Network)
class NetworkAdmin(AtlasGISAdmin):
    list_display = ("name", "level", "status", "amap_count", "website")
    list_filter = ("level", "status", "regions")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("regions", "departments", "admins")
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(amap_total=Count("amaps", distinct=True))

    @admin.display(description=_("AMAP membres"), ordering="amap_total")
    def amap_count(self, obj: Network) -> int:
        return obj.amap_total


class _DirectoryEntryAdmin(AtlasGISAdmin):
    """An AMAP's or a farm's form with where the entry came from at the end, as an editor reads it."""

    # DirectoryEntry's fields come first in the model (an abstract base's fields always do).
    PROVENANCE = ("source", "external_id", "is_demo")

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        readonly = set(self.get_readonly_fields(request, obj))
        edited = [name for name in fields if name not in readonly and name not in self.PROVENANCE]
        provenance = [name for name in fields if name in self.PROVENANCE and name not in readonly]
        return [*edited, *provenance, *(name for name in fields if name in readonly)]


@admin.register(Amap)
class AmapAdmin(_DirectoryEntryAdmin):
    list_display = (
        "name",
        "commune",
        "status",
        "kind",
        "accepting_members",
        "delivery_days",
        "delivery_hours",
        "is_demo",
        "source",
    )
    list_filter = (
        "status",
        "accepting_members",
        "kind",
        "delivery_frequency",
        ("commune__department", DepartmentFilter),
        "networks",
        "is_demo",
        "source",
    )
    list_select_related = ("commune",)
    search_fields = ("name", "commune__name", "postal_code", "address", "external_id", "=commune__code")
    autocomplete_fields = ("commune", "products", "networks")
    readonly_fields = ("created_at", "updated_at")
    inlines = (AmapManagerInline, AmapPartnershipInline)
    list_per_page = 50
    date_hierarchy = "founded_on"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "delivery_weekdays":
            return _checkboxes(db_field, Weekday.choices)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("jours"))
    def delivery_days(self, obj: Amap) -> str:
        return ", ".join(str(Weekday(day).label) for day in obj.delivery_weekdays)

    @admin.display(description=_("horaires"))
    def delivery_hours(self, obj: Amap) -> str:
        if obj.delivery_start and obj.delivery_end:
            return f"{obj.delivery_start:%H:%M}–{obj.delivery_end:%H:%M}"
        return ""


@admin.register(Farm)
class FarmAdmin(_DirectoryEntryAdmin):
    list_display = (
        "name",
        "commune",
        "is_active",
        "labels_display",
        "delivery_radius_km",
        "capacity_shares",
        "is_demo",
        "source",
    )
    list_filter = (
        "is_active",
        "products",
        ("commune__department", DepartmentFilter),
        "networks",
        "is_demo",
        "source",
    )
    list_select_related = ("commune",)
    search_fields = ("name", "commune__name", "postal_code", "address", "external_id", "=commune__code")
    autocomplete_fields = ("commune", "products", "networks", "managers")
    readonly_fields = ("public_location_display", "created_at", "updated_at")
    inlines = (FarmPartnershipInline,)
    list_per_page = 50

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "labels":
            return _checkboxes(db_field, Farm.Label.choices)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("labels"))
    def labels_display(self, obj: Farm) -> str:
        names = dict(Farm.Label.choices)
        return ", ".join(str(names.get(label, label)) for label in obj.labels)

    @admin.display(description=_("emplacement public (approximatif)"))
    def public_location_display(self, obj: Farm) -> str:
        if obj.public_location is None:
            return "—"
        return _("%(lat).5f, %(lon).5f — recalculé à l'enregistrement, seul point montré au public") % {
            "lat": obj.public_location.y,
            "lon": obj.public_location.x,
        }


@admin.register(Partnership)
class PartnershipAdmin(admin.ModelAdmin):
    list_display = ("amap", "farm", "product", "since", "until", "is_active", "source")
    list_filter = ("is_active", "product", "source")
    list_select_related = ("amap", "farm", "product")
    search_fields = ("amap__name", "farm__name")
    autocomplete_fields = ("amap", "farm", "product")
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 50
