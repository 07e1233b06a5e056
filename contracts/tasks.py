"""Background jobs of the contracts app: the daily retention run (cron times in UTC)."""

import logging

from procrastinate.contrib.django import app

from contracts.retention import retention_apply

logger = logging.getLogger(__name__)


@app.periodic(cron="30 2 * * *")  # 03:30 or 04:30 in France
@app.task(queue="periodic", queueing_lock="contracts.apply_retention")
def apply_retention(timestamp: int) -> None:
    """What `manage.py apply_retention --commit` does: the retention periods, applied in one transaction."""
    plan = retention_apply(commit=True)
    for line in plan.describe():
        logger.info("apply_retention: %s", line)
