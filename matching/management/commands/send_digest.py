"""`manage.py send_digest`: e-mail each person what is new since their last digest (idempotent)."""

from django.core.management.base import BaseCommand

from matching import services


class Command(BaseCommand):
    help = "Envoie le récapitulatif des nouveautés (alertes et nouvelles correspondances) ; sans doublon."

    def handle(self, *args, **options):
        report = services.digest_send()
        self.stdout.write(
            f"{report.emails} e-mails envoyés ({report.alerts} nouveautés d'alertes, "
            f"{report.matches} nouvelles correspondances)"
        )
