"""A member's own space: deliveries, calendar feed, « Mes données » (export, erasure)."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_http_methods

from accounts.form_errors import apply_errors

from .. import ics, privacy, selectors
from ..forms import (
    ErasureForm,
)
from .access import (
    _attachment,
    _posted,
)

# --------------------------------------------------------------------------------------------
# Member: deliveries and calendar feed, personal data


@login_required
@require_GET
def my_deliveries(request):
    deliveries = (
        selectors.deliveries_of_member(user=request.user)
        .select_related("contract", "contract__amap", "contract__farm")
        .filter(date__gte=timezone.localdate() - dt.timedelta(days=7))
        .order_by("date", "pk")
    )
    feed = request.build_absolute_uri(reverse("contracts:ics_feed", args=[ics.ics_token(request.user)]))
    today = timezone.localdate()
    past, months = [], {}
    for delivery in deliveries[:200]:
        if delivery.date < today:
            past.append(delivery)
        else:
            months.setdefault((delivery.date.year, delivery.date.month), []).append(delivery)
    context = {
        "past": past,
        "months": [
            {"label": date_format(dt.date(year, month, 1), "F Y"), "deliveries": items}
            for (year, month), items in months.items()
        ],
        "feed_url": feed,
    }
    return render(request, "contracts/my_deliveries.html", context)


@require_GET
def ics_feed(request, token: str):
    user = ics.user_from_ics_token(token)
    if user is None:
        raise Http404
    content = ics.member_calendar(user=user)
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="amap-livraisons.ics"'
    return response


@login_required
@require_GET
def my_data(request):
    return render(request, "contracts/my_data.html", {"held": privacy.member_data_summary(user=request.user)})


@login_required
@require_GET
def my_data_export(request, fmt: str):
    user = request.user
    if fmt == "json":
        content = json.dumps(privacy.member_data_export(user=user), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        return _attachment(content, content_type="application/json; charset=utf-8", filename="mes-donnees.json")
    if fmt == "csv":
        # One CSV file per table (account, subscriptions, deliveries…), zipped.
        content = privacy.member_data_export_csv(user=user)
        return _attachment(content, content_type="application/zip", filename="mes-donnees-csv.zip")
    raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def my_data_erase(request):
    """GET: what erasure would delete and keep (computed, then rolled back); POST: do it."""
    form = ErasureForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            report = privacy.member_erasure(user=request.user)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            logout(request)
            return render(request, "contracts/my_data_erased.html", {"report": report})
    try:
        preview, blocked = privacy.member_erasure(user=request.user, commit=False), []
    except ValidationError as error:
        preview, blocked = None, error.messages
    context = {"form": form, "preview": preview, "blocked": blocked}
    return render(request, "contracts/my_data_erase.html", context)
