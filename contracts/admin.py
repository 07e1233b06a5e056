"""Admin of the contracts app.

Evidence (signatures, signed PDFs, the hash-chained trail) is read-only here: nobody adds,
edits or deletes it by hand. Signed subscriptions are amended through the pages, never
edited in place.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import (
    AcademicBreak,
    AcademicCalendar,
    CalendarException,
    Charter,
    Contract,
    ContractDocument,
    ContractProduct,
    Delivery,
    EvidenceEvent,
    Signature,
    Subscription,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff, never added, changed or deleted through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Charter)
class CharterAdmin(admin.ModelAdmin):
    list_display = ("title", "version", "published_on", "is_current")
    readonly_fields = ("text_sha256",)

    def get_readonly_fields(self, request, obj=None):
        # Signatures bind to a version's text: a published version never changes, a new one is added.
        if obj is not None and obj.pk:
            return ("version", "title", "text", "text_sha256", "published_on")
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False


class AcademicBreakInline(admin.TabularInline):
    model = AcademicBreak
    extra = 1


@admin.register(AcademicCalendar)
class AcademicCalendarAdmin(admin.ModelAdmin):
    list_display = ("__str__", "amap", "starts_on", "ends_on")
    raw_id_fields = ("amap",)
    inlines = [AcademicBreakInline]


class ContractProductInline(admin.TabularInline):
    model = ContractProduct
    extra = 0


class CalendarExceptionInline(admin.TabularInline):
    model = CalendarException
    extra = 0


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ("title", "amap", "farm", "season_start", "season_end", "status", "legal_hold")
    list_filter = ("status", "frequency", "legal_hold")
    search_fields = ("title", "amap__name", "farm__name")
    raw_id_fields = ("amap", "farm", "partnership", "referent", "previous", "created_by", "academic_calendar")
    readonly_fields = ("created_at", "updated_at")
    inlines = [ContractProductInline, CalendarExceptionInline]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("contract", "scheduled_date", "date", "status")
    list_filter = ("status",)
    raw_id_fields = ("contract",)
    date_hierarchy = "date"


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("member_name", "contract", "status", "version", "shares", "signed_at", "legal_hold")
    list_filter = ("status", "legal_hold")
    search_fields = ("member_name", "contract__title")
    raw_id_fields = ("contract", "member", "previous")
    readonly_fields = ("created_at", "updated_at", "signed_at", "cancelled_at", "member_anonymised_at")

    def has_change_permission(self, request, obj=None):
        # A signed subscription is evidence; only its legal hold may be set (through the contract).
        if obj is not None and obj.is_frozen:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Signature)
class SignatureAdmin(ReadOnlyAdmin):
    list_display = ("signer_name", "role", "subscription", "signed_at", "charter")
    list_filter = ("role",)
    search_fields = ("signer_name", "document_sha256")


@admin.register(ContractDocument)
class ContractDocumentAdmin(ReadOnlyAdmin):
    list_display = ("subscription", "sha256", "created_at")
    search_fields = ("sha256",)
    exclude = ("pdf",)  # bytes; download it from the subscription page
    readonly_fields = ("subscription", "sha256", "created_at")


@admin.register(EvidenceEvent)
class EvidenceEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "contract_id", "subscription_id", "created_at", "short_hash", "redacted_at")
    list_filter = ("kind",)
    search_fields = ("hash", "kind")

    @admin.display(description=_("empreinte"))
    def short_hash(self, obj) -> str:
        return obj.hash[:12]
