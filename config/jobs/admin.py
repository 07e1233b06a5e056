"""Jobs in the admin: Procrastinate's own job list, plus why each failed attempt failed."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateJob

from config.jobs.models import JobError


class JobErrorInline(admin.StackedInline):
    model = JobError
    extra = 0
    can_delete = False
    fields = ["attempt", "at", "error", "traceback"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


admin.site.unregister(ProcrastinateJob)


@admin.register(ProcrastinateJob)
class JobAdmin(ProcrastinateJobAdmin):
    list_display = [*ProcrastinateJobAdmin.list_display, "last_error"]
    inlines = [JobErrorInline, *ProcrastinateJobAdmin.inlines]

    @admin.display(description=_("dernière erreur"))
    def last_error(self, job: ProcrastinateJob) -> str:
        error = job.errors.order_by("-at", "-pk").first()
        return error.error if error else ""


@admin.register(JobError)
class JobErrorAdmin(admin.ModelAdmin):
    list_display = ["at", "task_name", "job_id", "attempt", "error"]
    list_filter = ["task_name"]
    search_fields = ["task_name", "error"]
    readonly_fields = ["job", "task_name", "attempt", "error", "traceback", "at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
