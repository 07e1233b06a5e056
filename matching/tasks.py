"""Background jobs of the matching app: the weekly refit of the ranking, the nightly matchmaking, the daily digest.

Cron times are UTC (Procrastinate's periodic deferrer counts in UTC). Each periodic job is
deferred once per period whatever the number of workers running (a unique row per task and
period in procrastinate_periodic_defers), and a queueing lock keeps a backlog from stacking
a second run behind one still waiting.
"""

import logging

from procrastinate.contrib.django import app

from matching import bulk, services
from matching.learning.store import matching_model_train

logger = logging.getLogger(__name__)


@app.periodic(cron="30 0 * * 0")  # Sunday night, an hour before that night's matchmaking
@app.task(queue="periodic", queueing_lock="matching.train_matching")
def train_matching(timestamp: int) -> None:
    """What `manage.py train_matching` does: refit on the partnerships as they now are (the fixed
    weights rank while there are too few links); the night's `match_all` then stores its matches."""
    model = matching_model_train()
    logger.info(
        "train_matching: %s", f"version {model.version}" if model is not None else "too few links: fixed weights"
    )


@app.periodic(cron="30 1 * * *")  # 02:30 or 03:30 in France
@app.task(queue="periodic", queueing_lock="matching.match_all")
def match_all(timestamp: int) -> None:
    """What `manage.py match_all` does: expire overdue annonces, then store every annonce's 10 best matches."""
    expired = services.annonce_expire_due()
    report = bulk.match_all(k=10)
    logger.info(
        "match_all: %d annonces, %d matches stored, %d expired, %.1f s",
        report.annonces,
        report.matches,
        expired,
        report.total_s,
    )


@app.periodic(cron="0 5 * * *")  # 06:00 or 07:00 in France, after the matchmaking
@app.task(queue="periodic", queueing_lock="matching.send_digest")
def send_digest(timestamp: int) -> None:
    """What `manage.py send_digest` does (idempotent: nothing is sent twice)."""
    report = services.digest_send()
    logger.info("send_digest: %d e-mails (%d alerts, %d matches)", report.emails, report.alerts, report.matches)
