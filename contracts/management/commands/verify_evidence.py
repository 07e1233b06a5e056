from django.core.management.base import BaseCommand, CommandError

from contracts.evidence import evidence_head, evidence_verify


class Command(BaseCommand):
    help = (
        "Vérifie le chaînage du journal de preuves des contrats et affiche sa tête (nombre, dernier id, "
        "dernière empreinte). Gardez cette tête ailleurs (e-mail, archive) : passée à --anchor, elle permet "
        "de détecter aussi la suppression des derniers événements."
    )

    def add_arguments(self, parser):
        parser.add_argument("--anchor", help="Empreinte de tête relevée lors d'une vérification précédente.")

    def handle(self, *args, anchor=None, **options):
        if anchor is not None and (len(anchor) != 64 or any(c not in "0123456789abcdef" for c in anchor)):
            raise CommandError("--anchor : une empreinte SHA-256 s'écrit avec 64 caractères hexadécimaux (0-9, a-f).")
        head = evidence_head()
        report = evidence_verify(anchor=anchor)
        if not report.ok:
            where = f" à l'événement n° {report.first_bad_id}" if report.first_bad_id is not None else ""
            raise CommandError(f"Journal de preuves altéré{where} : {report.reason} ({report.checked} vérifiés).")
        self.stdout.write(f"Journal de preuves intègre : {report.checked} événements vérifiés.")
        self.stdout.write(f"Tête : {head.count} événements, dernier n° {head.last_id}, empreinte {head.last_hash}")
