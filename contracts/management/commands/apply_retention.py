"""`manage.py apply_retention [--commit] [--now AAAA-MM-JJ]`

Applies the retention periods of `contracts.retention`: the member's identity leaves signed
contracts 5 years after their season, the contracts go after 10 years, accounts inactive for
3 years are anonymised, legal holds respected. Dry run by default (everything is done then
rolled back, so the rehearsal proves the run would succeed); `--commit` applies it in one
transaction. `--now` computes the plan at another date, for audits (simulation only when it
lies in the future).
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from contracts.retention import retention_apply


class Command(BaseCommand):
    help = "Durées de conservation des contrats et des comptes. Simulation par défaut ; --commit applique."

    def add_arguments(self, parser):
        parser.add_argument("--commit", action="store_true", help="appliquer (sinon : simulation)")
        parser.add_argument("--now", default=None, help="date de référence AAAA-MM-JJ (par défaut : aujourd'hui)")

    def handle(self, *args, commit: bool, now: str | None, **options):
        reference = None
        if now:
            try:
                day = dt.date.fromisoformat(now)
            except ValueError as error:
                raise CommandError(f"Date de référence invalide : « {now} » (format attendu AAAA-MM-JJ).") from error
            if commit and day > timezone.localdate():
                raise CommandError(
                    f"La date de référence {day:%d/%m/%Y} est dans le futur : seule une simulation est possible "
                    "(relancez sans --commit)."
                )
            # Noon local time: the same calendar day whatever the offset to UTC.
            reference = timezone.make_aware(dt.datetime.combine(day, dt.time(12)))
        plan = retention_apply(now=reference, commit=commit)
        for line in plan.describe():
            self.stdout.write(line)
        if options["verbosity"] >= 2:
            for action in plan.ACTIONS:
                ids = getattr(plan, action)
                if ids:
                    self.stdout.write(f"  {action} : {', '.join(str(pk) for pk in ids)}")
        if commit:
            self.stdout.write(self.style.SUCCESS("Appliqué."))
        else:
            self.stdout.write("Simulation : rien n'a été modifié. Relancez avec --commit pour appliquer.")
