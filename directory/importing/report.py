"""The import report: errors and warnings by row and column, and what was (or would be) written.

It stays small whatever the file's size: the counts are exact, and the first `LISTED` errors,
warnings and written rows are kept with their text (a 50,000-row file with a warning on every
row would otherwise hold 50,000 of them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..services import Outcome

KINDS = ("amap", "farm", "partnership")
KIND_LABELS = {"amap": "AMAP", "farm": "ferme", "partnership": "partenariat"}

# Errors, warnings and lines of what was written kept with their text, each; the counts are exact.
LISTED = 1000


@dataclass(frozen=True)
class Issue:
    row: int | None
    column: str
    message: str
    row_word: str = "ligne"

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"{self.row_word} {self.row}")
        if self.column:
            where.append(f"colonne « {self.column} »")
        return f"{', '.join(where)} : {self.message}" if where else self.message


@dataclass
class ImportReport:
    kind: str
    source: str
    path: str
    row_word: str = "ligne"
    rows_read: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # (entity, outcome) → n
    committed: bool = False
    error_count: int = 0
    warning_count: int = 0
    action_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.error_count

    def error(self, row: int | None, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < LISTED:
            self.errors.append(Issue(row, column, message, self.row_word))

    def warn(self, row: int | None, column: str, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < LISTED:
            self.warnings.append(Issue(row, column, message, self.row_word))

    def act(self, line: str) -> None:
        """One line of what was (or would be) written."""
        self.action_count += 1
        if len(self.actions) < LISTED:
            self.actions.append(line)

    def forget_actions(self) -> None:
        """Nothing is written after all (an error further down the file): no counts, no lines."""
        self.counts.clear()
        self.actions.clear()
        self.action_count = 0

    def count(self, entity: str, outcome: Outcome) -> int:
        return self.counts[(entity, outcome)]

    def summary_lines(self) -> list[str]:
        lines = []
        verbs = {
            Outcome.CREATED: ("créée(s)", "à créer"),
            Outcome.UPDATED: ("mise(s) à jour", "à mettre à jour"),
            Outcome.UNCHANGED: ("inchangée(s)", "inchangée(s)"),
        }
        for entity, label in (("amap", "AMAP"), ("farm", "ferme(s)"), ("partnership", "partenariat(s)")):
            parts = [
                f"{self.counts[(entity, outcome)]} {verbs[outcome][0 if self.committed else 1]}"
                for outcome in Outcome
                if self.counts[(entity, outcome)]
            ]
            if parts:
                lines.append(f"{label} : {', '.join(parts)}")
        return lines

    def as_text(self, *, details: bool = True) -> str:
        what = f"{KIND_LABELS[self.kind]}, source « {self.source} »"
        out = [f"Import de {self.path} ({what}) : {self.rows_read} {self.row_word}(s) lue(s)."]
        out.extend(self.notes)
        if self.error_count:
            out.append(f"{self.error_count} erreur(s) — rien n'a été enregistré :")
            out.extend(f"  - {issue}" for issue in self.errors)
            out.extend(_unlisted(self.error_count - len(self.errors), "erreur(s)"))
        if self.warning_count:
            out.append(f"{self.warning_count} avertissement(s) (lignes gardées) :")
            out.extend(f"  - {issue}" for issue in self.warnings)
            out.extend(_unlisted(self.warning_count - len(self.warnings), "avertissement(s)"))
        if not self.error_count:
            if details and self.actions:
                out.extend(f"  {line}" for line in self.actions)
                out.extend(_unlisted(self.action_count - len(self.actions), "ligne(s) écrite(s)"))
            out.extend(self.summary_lines() or ["Rien à faire."])
            if not self.committed:
                out.append("Simulation : rien n'a été enregistré. Relancez avec --commit pour enregistrer.")
        return "\n".join(out)


def _unlisted(count: int, what: str) -> list[str]:
    if count <= 0:
        return []
    return [f"  (+ {count} {what} de plus : seules les {LISTED} premières lignes sont détaillées)"]
