from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

DEMO_EMAIL = "admin@example.org"


class Command(BaseCommand):
    help = "Crée le compte d'administration de démonstration (admin@example.org / demo), en mode DEBUG seulement."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusé : le compte de démonstration n'existe qu'en mode DEBUG.")
        if User.objects.filter(email=DEMO_EMAIL).exists():
            return
        User.objects.create_superuser(DEMO_EMAIL, "demo", display_name="Admin démo")
        self.stdout.write(f"Compte créé : {DEMO_EMAIL} / demo")
