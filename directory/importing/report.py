"""The import report: every error and warning by row and column, and what was (or would be) written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..services import Outcome

KINDS = ("amap", "farm", "partnership")
KIND_LABELS = {"amap": "AMAP", "farm": "ferme", "partnership": "partenariat"}


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

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, row: int | None, column: str, message: str) -> None:
        self.errors.append(Issue(row, column, message, self.row_word))

    def warn(self, row: int | None, column: str, message: str) -> None:
        self.warnings.append(Issue(row, column, message, self.row_word))

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
        if self.errors:
            out.append(f"{len(self.errors)} erreur(s) — rien n'a été enregistré :")
            out.extend(f"  - {issue}" for issue in self.errors)
        if self.warnings:
            out.append(f"{len(self.warnings)} avertissement(s) (lignes gardées) :")
            out.extend(f"  - {issue}" for issue in self.warnings)
        if not self.errors:
            if details and self.actions:
                out.extend(f"  {line}" for line in self.actions)
            out.extend(self.summary_lines() or ["Rien à faire."])
            if not self.committed:
                out.append("Simulation : rien n'a été enregistré. Relancez avec --commit pour enregistrer.")
        return "\n".join(out)
