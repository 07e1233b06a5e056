"""Big exports off the request path: a summary PDF of many subscriptions is built by a job.

Measured before: a 300-member AMAP summary PDF took about 1.9 s of CPU inside the request (10.8 s
wall on a loaded machine). Above `SUMMARY_PDF_INLINE_MAX_SUBSCRIPTIONS` the page asks a job for it
and shows « votre fichier est en préparation », then « votre fichier est prêt » with its link.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from directory.models import Amap, Farm

from .. import exports
from ..models import Contract, PreparedFile, Subscription

BUILD_TASK = "contracts.tasks.build_prepared_file"
SCOPE_MODELS = {"contract": Contract, "amap": Amap, "farm": Farm}
_SCOPE_FILTERS = {"contract": "contract", "amap": "contract__amap", "farm": "contract__farm"}


def _inline_max() -> int:
    return int(getattr(settings, "SUMMARY_PDF_INLINE_MAX_SUBSCRIPTIONS", 100))


def summary_pdf_is_large(*, scope: dict) -> bool:
    """Whether this scope's summary PDF should be built by a job rather than in the request."""
    [(name, obj)] = scope.items()
    return Subscription.objects.filter(**{_SCOPE_FILTERS[name]: obj}).count() > _inline_max()


@transaction.atomic
def summary_pdf_prepare(
    *, owner, scope: dict, by: str, start: dt.date | None, end: dt.date | None, title: str
) -> PreparedFile:
    """Record the file to build and enqueue its job in the same transaction (the caller checked the rights)."""
    [(name, obj)] = scope.items()
    prepared = PreparedFile.objects.create(
        owner=owner,
        title=title,
        filename=f"bilan-{by}.pdf",
        content_type="application/pdf",
        params={
            "scope": name,
            "pk": obj.pk,
            "by": by,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
        },
        expires_at=timezone.now() + dt.timedelta(hours=settings.PREPARED_FILE_HOURS),
    )
    app.configure_task(BUILD_TASK).defer(file_id=prepared.pk)
    return prepared


def prepared_file_build(*, file_id: int) -> None:
    """The job: build the file's bytes and mark it ready (or failed, the error staying on the job)."""
    PreparedFile.objects.expired().delete()  # the files nobody fetched in time
    prepared = PreparedFile.objects.filter(pk=file_id, status=PreparedFile.Status.PENDING).first()
    if prepared is None:
        return  # expired, or already built by an earlier attempt
    params = prepared.params
    obj = SCOPE_MODELS[params["scope"]].objects.get(pk=params["pk"])
    day = dt.date.fromisoformat
    try:
        content = exports.summary_pdf(
            **{params["scope"]: obj},
            by=params["by"],
            start=day(params["start"]) if params["start"] else None,
            end=day(params["end"]) if params["end"] else None,
        )
    except Exception:
        prepared.status = PreparedFile.Status.FAILED
        prepared.save(update_fields=["status"])
        raise
    prepared.content = content
    prepared.status = PreparedFile.Status.READY
    prepared.save(update_fields=["content", "status"])
