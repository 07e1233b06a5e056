"""Write the demo contract shown by `make demo` (see `contracts.demo`)."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from contracts import demo


class Command(BaseCommand):
    help = (
        "Crée un contrat de démonstration (légumes, une AMAP et une ferme de démonstration) avec son équipe, "
        "ses adhérent·es, leurs signatures et ses distributions. Comptes @example.org, mot de passe « demo » : "
        "en mode DEBUG seulement. Relancer la commande ne crée rien de plus."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="ne rien faire du tout si le contrat de démonstration existe déjà (relance rapide de `make demo`)",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "Refusé : les comptes de démonstration (mot de passe « demo ») n'existent qu'en mode DEBUG."
            )
        verbose = options["verbosity"] >= 1
        if options["if_empty"] and demo.demo_contracts().exists():
            if verbose:
                self.stdout.write("Contrat de démonstration déjà présent : rien à faire.")
            return
        # The demo admin becomes an admin of the demo AMAP.
        call_command("ensure_demo_admin", verbosity=options["verbosity"], stdout=self.stdout)
        summary = demo.demo_contract_load()
        if summary is None:
            if verbose:
                self.stdout.write(
                    "Aucune AMAP ou ferme de démonstration : lancez d'abord `manage.py load_demo` ; rien à faire."
                )
            return
        if verbose:
            for line in demo.summary_lines(summary):
                self.stdout.write(line)
            self.stdout.write(f"Terminé en {summary.seconds:.1f} s.".replace(".", ",", 1))
