"""Writes of a network's space: its team of coordinators, web imports, announcements, freshness.

Coordinators of a network are its `Network.admins`; staff may do everything they do.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg import sql

from .importing import KINDS
from .models import Amap, Announcement, AnnouncementOptOut, Farm, ImportRun, Network
from .selectors.network import is_coordinator
from .signals import rows_written

IMPORT_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".geojson", ".json", ".gpkg")
IMPORT_MAX_BYTES = 50 * 1024 * 1024  # 50 Mo: a national list is about 10 Mo

VERIFY_SALT = "directory.entry-verify"
VERIFY_MAX_AGE_S = 90 * 24 * 3600  # a reminder's link works for three months
OPTOUT_SALT = "directory.announcement-optout"


def _require_coordinator(user, network: Network) -> None:
    if not is_coordinator(user, network):
        raise PermissionDenied(_("Seul·es les coordinateur·rices du réseau peuvent faire cela."))


# --- team ---------------------------------------------------------------------------------


@transaction.atomic
def coordinator_add(*, user, network: Network, email: str) -> None:
    """Make an existing account a coordinator of the network."""
    _require_coordinator(user, network)
    person = get_user_model().objects.filter(email__iexact=(email or "").strip(), is_active=True).first()
    if person is None:
        raise ValidationError(
            {"email": [_("Aucun compte n'utilise cette adresse : la personne doit d'abord s'inscrire.")]}
        )
    network.admins.add(person)


@transaction.atomic
def coordinator_remove(*, user, network: Network, person_id: int) -> None:
    """Take someone off the team; the last coordinator stays (staff aside, a network needs one)."""
    _require_coordinator(user, network)
    team = list(network.admins.select_for_update().values_list("pk", flat=True))
    if person_id not in team:
        return
    if team == [person_id]:
        raise ValidationError({"email": [_("Le réseau doit garder au moins un·e coordinateur·rice.")]})
    network.admins.remove(person_id)


# --- imports from the web -----------------------------------------------------------------


@transaction.atomic
def import_run_start(*, user, network: Network, kind: str, source: str, filename: str, content: bytes) -> ImportRun:
    """Keep the uploaded file and queue its check (a dry run) in the same transaction."""
    from . import tasks

    _require_coordinator(user, network)
    if kind not in KINDS:
        raise ValidationError({"kind": [_("Type de contenu inconnu.")]})
    if not filename.lower().endswith(IMPORT_SUFFIXES):
        raise ValidationError({"file": [_("Format non reconnu : envoyez un fichier .csv, .xlsx, .geojson ou .gpkg.")]})
    if not content:
        raise ValidationError({"file": [_("Le fichier est vide.")]})
    if len(content) > IMPORT_MAX_BYTES:
        raise ValidationError({"file": [_("Fichier trop gros (50 Mo au plus).")]})
    run = ImportRun.objects.create(
        network=network,
        created_by=user,
        kind=kind,
        source=source[:60],
        filename=filename[-200:],
        content=content,
    )
    tasks.import_check.defer(run_id=run.pk)
    return run


def network_members_add_source(*, network: Network, kind: str, source: str) -> int:
    """« Importer dans ce réseau »: every AMAP (or farm) of `source` joins the network; how many joined.

    One INSERT … SELECT: `network.amaps.add(*ids)` builds a model per link, minutes for 50,000.
    """
    model = Farm if kind == "farm" else Amap
    field = model._meta.get_field("networks")
    through = field.remote_field.through._meta
    query = sql.SQL(
        "INSERT INTO {through} ({entry}, {network}) SELECT e.id, %s FROM {entries} AS e WHERE e.source = %s "
        "ON CONFLICT DO NOTHING"
    ).format(
        through=sql.Identifier(through.db_table),
        entry=sql.Identifier(through.get_field(field.m2m_field_name()).column),
        network=sql.Identifier(through.get_field(field.m2m_reverse_field_name()).column),
        entries=sql.Identifier(model._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [network.pk, source])
        added = cursor.rowcount
    if added:
        rows_written.send(sender=Network, ids=[network.pk])
    return added


@transaction.atomic
def import_run_commit(*, user, run: ImportRun) -> None:
    """Queue the writing of a checked import."""
    from . import tasks

    _require_coordinator(user, run.network)
    run = ImportRun.objects.select_for_update().get(pk=run.pk)
    if run.status != ImportRun.Status.CHECKED or not run.ok:
        raise ValidationError(_("Seul un import vérifié sans erreur peut être enregistré."))
    run.status, run.done, run.total, run.phase = ImportRun.Status.COMMITTING, 0, 0, ""
    run.save(update_fields=["status", "done", "total", "phase", "updated_at"])
    tasks.import_commit.defer(run_id=run.pk)


# --- announcements ------------------------------------------------------------------------


@transaction.atomic
def announcement_send(
    *, user, network: Network, subject: str, body: str, audiences: list[str], department=None, product=None
) -> Announcement:
    """Record the announcement and queue the job that sends it (one e-mail per recipient)."""
    from . import tasks
    from .selectors.announcements import announcement_recipients

    _require_coordinator(user, network)
    audiences = [a for a in Announcement.Audience.values if a in set(audiences)]
    if not audiences:
        raise ValidationError({"audiences": [_("Choisissez au moins un groupe de destinataires.")]})
    announcement = Announcement(
        network=network,
        author=user,
        subject=subject,
        body=body,
        audiences=audiences,
        department=department,
        product=product,
    )
    announcement.full_clean()
    count = announcement_recipients(announcement=announcement).count()
    if count == 0:
        # A message that reaches nobody is never shown as sent.
        raise ValidationError(_("Personne ne recevrait ce message : élargissez les destinataires."))
    announcement.recipient_count = count
    announcement.save()
    tasks.announcement_deliver.defer(announcement_id=announcement.pk)
    return announcement


def optout_token(*, user_id: int, network_id: int | None) -> str:
    """A link that stops announcements for one person: from one network, or from all (None)."""
    return signing.dumps({"u": user_id, "n": network_id}, salt=OPTOUT_SALT, compress=True)


def optout_read(token: str) -> tuple[int, int | None]:
    """(user id, network id or None); signing.BadSignature when the link was altered."""
    data = signing.loads(token, salt=OPTOUT_SALT)
    return int(data["u"]), (int(data["n"]) if data.get("n") is not None else None)


def optout_apply(*, user_id: int, network_id: int | None) -> None:
    AnnouncementOptOut.objects.get_or_create(user_id=user_id, network_id=network_id)


# --- freshness ----------------------------------------------------------------------------


def verify_token(entry: Amap | Farm) -> str:
    kind = "amap" if isinstance(entry, Amap) else "farm"
    return signing.dumps({"k": kind, "id": entry.pk}, salt=VERIFY_SALT, compress=True)


def verify_read(token: str) -> Amap | Farm | None:
    """The entry a reminder's link names; signing.BadSignature (or SignatureExpired) otherwise."""
    data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE_S)
    model = Amap if data.get("k") == "amap" else Farm
    return model.objects.filter(pk=data.get("id")).first()


def entry_mark_verified(*, entry: Amap | Farm) -> None:
    """« Fiche vérifiée le … »: today (the link itself is the proof; no other field changes)."""
    now = timezone.now()
    type(entry).objects.filter(pk=entry.pk).update(verified_at=now)
    entry.verified_at = now
