"""Background jobs of the members app: sending a message to members, reminding unpaid adhésions.

Cron times are UTC (Procrastinate's periodic deferrer counts in UTC).
"""

import logging

from asgiref.sync import sync_to_async
from procrastinate.contrib.django import app

from members import services

logger = logging.getLogger(__name__)


@app.task(queue="members")
async def message_send(*, message_id: int) -> None:
    """One job per message fans out to its recipients; each recipient gets it once, even on a retry."""
    # thread_sensitive: Django's one sync thread (in tests, the test's own connection and transaction).
    sent = await sync_to_async(services.message_fan_out, thread_sensitive=True)(message_id=message_id)
    logger.info("message %s: %d e-mail(s) queued", message_id, sent)


@app.periodic(cron="0 7 * * *")  # 08:00 or 09:00 in France
@app.task(queue="periodic", queueing_lock="members.remind_unpaid_adhesions")
def remind_unpaid_adhesions(timestamp: int) -> None:
    sent = services.adhesions_remind_unpaid()
    logger.info("remind_unpaid_adhesions: %d reminder(s)", sent)
