from django.contrib import admin

from .models import Annonce, Match, MatchingModel, Message, SavedSearch, Thread


@admin.register(Annonce)
class AnnonceAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "status", "expires_on", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("title", "farm__name", "amap__name")
    raw_id_fields = ("farm", "amap", "commune", "created_by", "moderated_by")
    exclude = ("location",)  # a farm's exact point is not edited here
    readonly_fields = ("public_location",)


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ("annonce", "rank", "amap", "farm", "score", "distance_m", "computed_at", "notified_at")
    raw_id_fields = ("annonce", "amap", "farm", "counterpart_annonce")


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "created_at", "notified_until")
    raw_id_fields = ("user",)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    raw_id_fields = ("author",)


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ("subject", "started_by", "created_at")
    raw_id_fields = ("annonce", "started_by", "sender_amap", "sender_farm", "recipient_amap", "recipient_farm")
    inlines = [MessageInline]


@admin.register(MatchingModel)
class MatchingModelAdmin(admin.ModelAdmin):
    """The learned ranking's versions and cards (data size, date, cross-validated recall)."""

    list_display = ("version", "created_at", "links", "is_active", "recall_summary")
    readonly_fields = ("version", "created_at", "links", "parameters", "card", "recall_summary")
    fields = ("version", "created_at", "links", "is_active", "recall_summary", "card", "parameters")

    @admin.display(description="recall@1/3/10 appris vs plus proche d'abord")
    def recall_summary(self, obj) -> str:
        cv = (obj.card or {}).get("cross_validation", {})
        parts = []
        for at in (1, 3, 10):
            r = cv.get(f"recall_at_{at}")
            if r:
                parts.append(f"@{at} {r['learned']:.2f} / {r['nearest']:.2f}")
        return " · ".join(parts) or "—"

    def has_add_permission(self, request) -> bool:
        return False  # versions come from train_matching
