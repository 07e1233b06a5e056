from django.contrib import admin

from .models import Adhesion, AdhesionSeason, AdhesionTier, Membership, Message


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "amap", "status", "source"]
    list_filter = ["status", "source"]
    search_fields = ["email", "first_name", "last_name", "amap__name"]
    raw_id_fields = ["amap", "user", "decided_by"]


class TierInline(admin.TabularInline):
    model = AdhesionTier
    extra = 0


@admin.register(AdhesionSeason)
class AdhesionSeasonAdmin(admin.ModelAdmin):
    list_display = ["label", "amap", "fee_kind", "amount"]
    raw_id_fields = ["amap"]
    inlines = [TierInline]


@admin.register(Adhesion)
class AdhesionAdmin(admin.ModelAdmin):
    list_display = ["membership", "season", "amount", "status"]
    list_filter = ["status"]
    raw_id_fields = ["membership", "season", "marked_by"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["subject", "amap", "audience_label", "kind", "status", "recipients", "created_at"]
    raw_id_fields = ["amap", "author"]
