from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Event, Rsvp, Shift, ShiftQuota


@admin.register(ShiftQuota)
class ShiftQuotaAdmin(admin.ModelAdmin):
    list_display = ["amap", "contract", "needed"]
    raw_id_fields = ["amap", "contract"]


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ["date", "amap", "member", "offered_at", "reminded_at"]
    list_filter = ["date"]
    raw_id_fields = ["amap", "member"]


class RsvpInline(admin.TabularInline):
    model = Rsvp
    raw_id_fields = ["person"]
    extra = 0


@admin.register(Event)
class EventAdmin(SimpleHistoryAdmin):
    list_display = ["title", "kind", "starts_at", "amap", "network", "is_public", "cancelled"]
    list_filter = ["kind", "is_public", "cancelled"]
    raw_id_fields = ["amap", "network", "created_by"]
    inlines = [RsvpInline]
