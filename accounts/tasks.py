"""Background jobs of the accounts app: delivering e-mails."""

import logging
import smtplib

from django.conf import settings
from django.core.mail import get_connection
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from accounts.mail import email_from_json

logger = logging.getLogger(__name__)

# A mail server that is down or refuses for a while: try again after 3 s, 9 s, 27 s… up to
# 2187 s (about 55 minutes in all, 8 attempts), then the job fails and staff see its error.
# Only delivery errors are retried: a bug in the message would fail the same way each time.
EMAIL_RETRY = RetryStrategy(max_attempts=7, exponential_wait=3, retry_exceptions=[smtplib.SMTPException, OSError])


@app.task(queue="emails", retry=EMAIL_RETRY)
def send_email(*, message: dict) -> None:
    """Send one queued e-mail through the real backend (settings.EMAIL_DELIVERY_BACKEND)."""
    email = email_from_json(message)
    # fail_silently=False: a failure must reach the queue, which retries it.
    with get_connection(settings.EMAIL_DELIVERY_BACKEND, fail_silently=False) as connection:
        sent = connection.send_messages([email])
    logger.info("e-mail sent to %d recipient(s): %s", len(email.recipients()), email.subject)
    if sent == 0:
        raise smtplib.SMTPException("the mail backend accepted no message")
