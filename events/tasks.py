"""Background jobs of the events app: the daily shift reminders (cron times in UTC)."""

import logging

from procrastinate.contrib.django import app

from events.services import shift_reminders_send

logger = logging.getLogger(__name__)


@app.periodic(cron="0 7 * * *")  # 08:00 or 09:00 in France: two days before each distribution
@app.task(queue="periodic", queueing_lock="events.remind_shifts")
def remind_shifts(timestamp: int) -> None:
    """E-mail the members on duty in two days; each shift is reminded once (`Shift.reminded_at`)."""
    sent = shift_reminders_send()
    logger.info("remind_shifts: %s reminder(s)", sent)
