"""E-mails through the job queue, without touching the code that sends them.

`QueuedEmailBackend` is the project's EMAIL_BACKEND: `send_mail()` and friends hand it their
messages, it turns each into plain JSON and defers `accounts.tasks.send_email`, in the current
transaction (Procrastinate's Django connector uses Django's connection): a request that rolls
back sends nothing, and a message is never sent for data that was never saved. The worker
rebuilds the message and gives it to the real backend (EMAIL_DELIVERY_BACKEND).
"""

import base64
from email.mime.base import MIMEBase
from typing import Any

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend


def _content_to_json(content: str | bytes) -> dict[str, str]:
    if isinstance(content, bytes):
        return {"base64": base64.b64encode(content).decode("ascii")}
    return {"text": content}


def _content_from_json(data: dict[str, str]) -> str | bytes:
    if "base64" in data:
        return base64.b64decode(data["base64"])
    return data["text"]


def _attachment_to_json(attachment: Any) -> dict[str, Any]:
    if isinstance(attachment, MIMEBase):
        # A ready-made MIME part: keep its decoded payload, name and type.
        content = attachment.get_payload(decode=True) or b""
        filename, mimetype = attachment.get_filename(), attachment.get_content_type()
    else:
        filename, content, mimetype = attachment
    return {"filename": filename, "content": _content_to_json(content), "mimetype": mimetype}


def email_to_json(message: EmailMessage) -> dict[str, Any]:
    """Everything needed to send `message` again, as JSON (bytes in base64)."""
    return {
        "subject": str(message.subject),
        "body": str(message.body),
        "from_email": str(message.from_email),
        "to": [str(address) for address in message.to],
        "cc": [str(address) for address in message.cc],
        "bcc": [str(address) for address in message.bcc],
        "reply_to": [str(address) for address in message.reply_to],
        "headers": {str(name): str(value) for name, value in message.extra_headers.items()},
        "content_subtype": message.content_subtype,
        "mixed_subtype": message.mixed_subtype,
        "encoding": message.encoding if isinstance(message.encoding, str | None) else str(message.encoding),
        "alternatives": [
            {"content": _content_to_json(content), "mimetype": mimetype}
            for content, mimetype in getattr(message, "alternatives", [])
        ],
        "attachments": [_attachment_to_json(attachment) for attachment in message.attachments],
    }


def email_from_json(data: dict[str, Any]) -> EmailMultiAlternatives:
    """The message `email_to_json` described."""
    message = EmailMultiAlternatives(
        subject=data["subject"],
        body=data["body"],
        from_email=data["from_email"],
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        reply_to=data["reply_to"],
        headers=data["headers"],
    )
    message.content_subtype = data["content_subtype"]
    message.mixed_subtype = data["mixed_subtype"]
    message.encoding = data["encoding"]
    for alternative in data["alternatives"]:
        message.attach_alternative(_content_from_json(alternative["content"]), alternative["mimetype"])
    for attachment in data["attachments"]:
        message.attach(attachment["filename"], _content_from_json(attachment["content"]), attachment["mimetype"])
    return message


class QueuedEmailBackend(BaseEmailBackend):
    """Defers one `send_email` job per message; the worker does the sending."""

    def send_messages(self, email_messages) -> int:
        from accounts.tasks import send_email  # tasks import this module's helpers

        queued = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                send_email.defer(message=email_to_json(message))
            except Exception:
                if not self.fail_silently:
                    raise
            else:
                queued += 1
        return queued
