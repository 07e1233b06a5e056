"""Admin for France's territories (read-mostly: `load_territories` is their source) and the map widget."""

from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.contrib.gis.forms import OSMWidget
from django.utils.translation import gettext_lazy as _

from geo.models import Commune, Department, Region
from geo.text import normalize_place_name


class LocalOSMWidget(OSMWidget):
    """Django's OpenLayers map widget with OpenLayers served by the app (static/vendor/ol, see
    scripts/assets.sh) instead of a CDN. Only the OpenStreetMap tiles come from elsewhere."""

    default_lon = 2.5  # France, when there is nothing to show yet
    default_lat = 46.6
    default_zoom = 5

    class Media:
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")


class AtlasGISAdmin(GISModelAdmin):
    """GISModelAdmin with the local OpenLayers widget: every geometry field gets an editable map."""

    gis_widget = LocalOSMWidget


class ReadMostlyAdmin(AtlasGISAdmin):
    """Territories come from `load_territories`: staff may correct them, not add or delete them."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Region)
class RegionAdmin(ReadMostlyAdmin):
    list_display = ("code", "name", "population")
    search_fields = ("name", "code")
    ordering = ("name",)
    readonly_fields = ("code",)


@admin.register(Department)
class DepartmentAdmin(ReadMostlyAdmin):
    list_display = ("code", "name", "region", "population")
    list_filter = ("region",)
    list_select_related = ("region",)
    search_fields = ("name", "code")
    readonly_fields = ("code", "region")


@admin.register(Commune)
class CommuneAdmin(ReadMostlyAdmin):
    list_display = ("name", "code", "postal_codes_display", "department", "region", "population", "kind")
    list_filter = ("kind", "region", "department")
    list_select_related = ("department", "region")
    search_fields = ("name", "search_name", "code")
    search_help_text = _("Nom (avec ou sans accents), code INSEE ou code postal.")
    readonly_fields = ("code", "search_name", "kind", "parent", "department", "region")
    ordering = ("name", "code")
    list_per_page = 50

    @admin.display(description=_("codes postaux"))
    def postal_codes_display(self, obj: Commune) -> str:
        return ", ".join(obj.postal_codes)

    def get_search_results(self, request, queryset, search_term):
        """Names in any spelling, INSEE codes (prefix) and postal codes (exact, in the array)."""
        term = search_term.strip()
        if not term:
            return super().get_search_results(request, queryset, search_term)
        if term.isdigit() and len(term) == 5:
            return queryset.filter(postal_codes__contains=[term]) | queryset.filter(code=term), False
        if len(term) <= 5 and term.replace("A", "").replace("B", "").replace("a", "").replace("b", "").isdigit():
            return queryset.filter(code__istartswith=term), False
        normalized = normalize_place_name(term)
        results = queryset.filter(search_name__contains=normalized) if normalized else queryset.none()
        return results | queryset.filter(name__icontains=term), False
