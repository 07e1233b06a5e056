"""Contact threads: « Contacter » relays a message through the platform; nobody sees an address.

A message to a farm or an AMAP goes where `directory.contacts.contact_route` says (its team, its
contact address with a signed reply link, or the coordinators of its territory's network), and
each message keeps where it went and when the other side read it: the sender sees « transmis au
réseau X », « lu ». A message nobody can receive is refused, never shown as sent.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from directory import contacts
from directory.models import Amap, Farm

from .models import Annonce, Message, Thread

REPLY_LINK_SALT = "matching.thread.reply"
REPLY_LINK_MAX_AGE = datetime.timedelta(days=90)


def _site_url(path: str) -> str:
    base = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def reply_link_token(thread: Thread) -> str:
    """A signed token that lets the entry's address answer this one thread without an account."""
    return signing.dumps({"t": thread.pk}, salt=REPLY_LINK_SALT, compress=True)


def thread_from_reply_token(token: str) -> Thread | None:
    try:
        data = signing.loads(token, salt=REPLY_LINK_SALT, max_age=REPLY_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    return Thread.objects.filter(pk=data.get("t")).first() if isinstance(data, dict) else None


def reply_link_url(thread: Thread) -> str:
    return reverse("matching:thread_reply_link", args=[thread.pk, reply_link_token(thread)])


def on_starter_side(user, thread: Thread) -> bool:
    """The person who wrote first, or a manager of the farm or AMAP they wrote for."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if thread.started_by_id == user.pk:
        return True
    sender = thread.sender
    return sender is not None and sender.managers.filter(pk=user.pk).exists()


def on_recipient_side(user, thread: Thread) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if thread.recipient.managers.filter(pk=user.pk).exists():
        return True
    return thread.relayed_to.filter(admins=user).exists()


def _from_starter_side(message: Message) -> bool:
    return message.author is not None and on_starter_side(message.author, message.thread)


def _starter_targets(thread: Thread, *, exclude_user) -> list[tuple[str, str]]:
    emails = set()
    if thread.started_by is not None and thread.started_by.email and thread.started_by.is_active:
        emails.add(thread.started_by.email)
    if thread.sender is not None:
        emails.update(contacts.team_emails(thread.sender))
    if exclude_user is not None and exclude_user.email:
        emails.discard(exclude_user.email)
    url = _site_url(thread.get_absolute_url())
    return [(email, url) for email in sorted(emails)]


def _recipient_delivery(thread: Thread, *, exclude_user) -> tuple[str, str, list[tuple[str, str]]]:
    """(delivery kind, label for the sender, [(e-mail, link)]) for a message to the recipient side."""
    recipient = thread.recipient
    url = _site_url(thread.get_absolute_url())
    team = contacts.team_emails(recipient, exclude_user=exclude_user)
    if team:
        route = contacts.ContactRoute(entry=recipient, kind=contacts.TEAM, emails=tuple(team))
        return Message.Delivery.TEAM, route.delivery_label(), [(e, url) for e in team]
    relayed = list(thread.relayed_to.all())
    if relayed:
        emails = contacts.coordinator_emails(relayed, exclude_user=exclude_user)
        route = contacts.ContactRoute(entry=recipient, kind=contacts.NETWORK, emails=tuple(emails), networks=relayed)
        if emails:
            return Message.Delivery.NETWORK, route.delivery_label(), [(e, url) for e in emails]
    address = contacts.entry_address(recipient)
    if address:
        route = contacts.ContactRoute(entry=recipient, kind=contacts.ADDRESS, emails=(address,))
        return Message.Delivery.ADDRESS, route.delivery_label(), [(address, _site_url(reply_link_url(thread)))]
    return "", "", []


def _claim_url(entry) -> str:
    name = "directory:amap_claim" if isinstance(entry, Amap) else "directory:farm_claim"
    return _site_url(reverse(name, args=[entry.pk]))


def _notify(thread: Thread, message: Message) -> int:
    """E-mail the other side, one e-mail per person (nobody sees another recipient's address)."""
    if message.author is None:
        author_name = message.author_name or _("Quelqu'un")
    elif message.author.display_name:
        author_name = str(message.author)
    else:
        author_name = _("Un membre d'AMAP Atlas")  # never the sender's e-mail address
    from_starter = _from_starter_side(message)
    if from_starter and thread.sender is not None:
        author_name = f"{author_name} ({thread.sender})"
    if from_starter:
        _kind, _label, targets = _recipient_delivery(thread, exclude_user=message.author)
    else:
        targets = _starter_targets(thread, exclude_user=message.author)
    recipient = thread.recipient
    relayed = list(thread.relayed_to.all())
    subject = _("[AMAP Atlas] %(subject)s") % {"subject": thread.subject}
    sent = 0
    for email, url in targets:
        intro = ""
        if from_starter and relayed and message.delivery == Message.Delivery.NETWORK:
            intro = _(
                "Ce message s'adresse à « %(entry)s », qui n'a ni compte ni adresse sur AMAP Atlas. "
                "Vous coordonnez le réseau %(networks)s sur son territoire : merci de le faire suivre "
                "ou d'y répondre depuis la plateforme.\n\n"
            ) % {"entry": recipient, "networks": ", ".join(str(n) for n in relayed)}
        outro = ""
        if from_starter and message.delivery == Message.Delivery.ADDRESS:
            outro = _(
                "\n\nCe lien vous permet de répondre sans créer de compte. C'est votre fiche ? "
                "Revendiquez-la pour la tenir à jour : %(claim)s"
            ) % {"claim": _claim_url(recipient)}
        body = (
            intro
            + _(
                "%(author)s vous a écrit sur AMAP Atlas :\n\n%(body)s\n\n"
                "Répondre : %(url)s\n\n"
                "Votre adresse e-mail n'est pas communiquée : répondez depuis la plateforme."
            )
            % {"author": author_name, "body": message.body, "url": url}
            + outro
        )
        sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=True)
    return sent


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Écrivez un message.")]})
    if len(body) > 5000:
        raise ValidationError({"body": [_("5000 caractères au plus.")]})
    return body


@transaction.atomic
def thread_start(
    *,
    user,
    recipient: Amap | Farm,
    body: str,
    annonce: Annonce | None = None,
    sender: Amap | Farm | None = None,
    subject: str = "",
) -> Thread:
    """Write to a farm or an AMAP through the platform; refused when nobody can receive it."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Connectez-vous pour écrire."))
    body = _clean_body(body)
    if sender is not None and not permissions.user_manages(user, sender):
        raise PermissionDenied(_("Vous ne pouvez pas écrire au nom de « %(name)s ».") % {"name": sender})
    if isinstance(recipient, Amap) and recipient.status == Amap.Status.CLOSED:
        raise ValidationError({"recipient": [_("Cette AMAP est fermée.")]})
    route = contacts.contact_route(recipient, exclude_user=user)
    if not route.reachable:
        raise ValidationError({"recipient": [route.notice()]})
    if sender is None and annonce is not None and permissions.can_edit_annonce(user, annonce):
        sender = annonce.owner
    if not subject:
        if annonce is not None and annonce.owner == recipient:
            subject = _("Votre annonce : %(annonce)s") % {"annonce": annonce}
        else:
            subject = _("Message de %(sender)s") % {"sender": sender or user}
    thread = Thread.objects.create(
        annonce=annonce,
        subject=subject[:200],
        started_by=user,
        sender_amap=sender if isinstance(sender, Amap) else None,
        sender_farm=sender if isinstance(sender, Farm) else None,
        recipient_amap=recipient if isinstance(recipient, Amap) else None,
        recipient_farm=recipient if isinstance(recipient, Farm) else None,
    )
    if route.kind == contacts.NETWORK:
        thread.relayed_to.set(route.networks)
    message = Message.objects.create(
        thread=thread, author=user, body=body, delivery=route.kind, delivery_label=route.delivery_label()[:300]
    )
    transaction.on_commit(lambda: _notify(thread, message))
    return thread


@transaction.atomic
def thread_reply(*, user, thread: Thread, body: str) -> Message:
    if not permissions.can_read_thread(user, thread):
        raise PermissionDenied(_("Vous ne participez pas à cette conversation."))
    body = _clean_body(body)
    if on_starter_side(user, thread):
        kind, label, targets = _recipient_delivery(thread, exclude_user=user)
        if not targets:
            raise ValidationError({"body": [_("Plus personne ne peut recevoir de message pour ce destinataire.")]})
    else:
        kind = Message.Delivery.SENDER
        label = _("envoyé à %(name)s") % {"name": thread.sender or thread.started_by or _("l'expéditeur")}
    message = Message.objects.create(thread=thread, author=user, body=body, delivery=kind, delivery_label=label[:300])
    transaction.on_commit(lambda: _notify(thread, message))
    return message


@transaction.atomic
def thread_reply_by_link(*, thread: Thread, body: str) -> Message:
    """A reply from the entry's contact address, through the signed link it received (no account)."""
    body = _clean_body(body)
    label = _("envoyé à %(name)s") % {"name": thread.sender or thread.started_by or _("l'expéditeur")}
    message = Message.objects.create(
        thread=thread,
        author=None,
        author_name=str(thread.recipient)[:200],
        body=body,
        delivery=Message.Delivery.SENDER,
        delivery_label=label[:300],
    )
    transaction.on_commit(lambda: _notify(thread, message))
    return message


def thread_mark_read(*, thread: Thread, user=None, by_link: bool = False) -> int:
    """Mark the other side's messages read when one side opens the thread; returns how many."""
    if by_link or on_recipient_side(user, thread):
        unread = [m for m in thread.messages.filter(read_at__isnull=True) if _from_starter_side(m)]
    elif on_starter_side(user, thread):
        unread = [m for m in thread.messages.filter(read_at__isnull=True) if not _from_starter_side(m)]
    else:
        return 0  # staff looking on: nothing read by the people concerned
    ids = [m.pk for m in unread]
    return Message.objects.filter(pk__in=ids).update(read_at=timezone.now()) if ids else 0


def thread_title_for(*, thread: Thread, user) -> str:
    """The thread as its reader names it: « Conversation avec <the other side> », never their own name."""
    sender_name = str(thread.sender or thread.started_by or _("un compte supprimé"))
    recipient = thread.recipient
    uid = getattr(user, "pk", None)
    on_sender_side = uid is not None and (
        thread.started_by_id == uid or (thread.sender is not None and thread.sender.managers.filter(pk=uid).exists())
    )
    on_recipient_side = uid is not None and recipient is not None and recipient.managers.filter(pk=uid).exists()
    if on_sender_side and not on_recipient_side:
        return _("Conversation avec %(name)s") % {"name": recipient}
    if on_recipient_side and not on_sender_side:
        return _("Conversation avec %(name)s") % {"name": sender_name}
    return _("Conversation entre %(a)s et %(b)s") % {"a": sender_name, "b": recipient}


def threads_for(*, user) -> QuerySet[Thread]:
    return (
        Thread.objects.filter(
            Q(started_by=user)
            | Q(recipient_amap__managers=user)
            | Q(recipient_farm__managers=user)
            | Q(sender_amap__managers=user)
            | Q(sender_farm__managers=user)
        )
        .select_related("recipient_amap", "recipient_farm", "annonce")
        .distinct()
        .order_by("-created_at", "-pk")
    )
