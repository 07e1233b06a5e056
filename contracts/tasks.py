"""Background jobs of the contracts app: the daily retention run (cron times in UTC), big PDFs."""

import logging

from procrastinate.contrib.django import app

from contracts.retention import retention_apply
from contracts.services.files import prepared_file_build

logger = logging.getLogger(__name__)


@app.periodic(cron="30 2 * * *")  # 03:30 or 04:30 in France
@app.task(queue="periodic", queueing_lock="contracts.apply_retention")
def apply_retention(timestamp: int) -> None:
    """What `manage.py apply_retention --commit` does: the retention periods, applied in one transaction."""
    plan = retention_apply(commit=True)
    for line in plan.describe():
        logger.info("apply_retention: %s", line)


@app.task(queue="exports")
def build_prepared_file(file_id: int) -> None:
    """A big summary PDF, built off the request path (contracts.services.files)."""
    prepared_file_build(file_id=file_id)
