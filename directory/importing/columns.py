"""The French column vocabulary: which headers name which field, `--map` overrides, required columns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .. import parsing
from .readers import Table
from .report import ImportReport

# Canonical field → header spellings, after `normalize_header` (accents, case, spaces dropped).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifiant", "ref", "reference", "code", "uid", "id_amap", "id_ferme", "id_producteur"),
    "nom": ("nom", "name", "nom_amap", "nom_de_l_amap", "nom_ferme", "nom_de_la_ferme", "nom_producteur", "titre"),
    "ville": ("ville", "commune", "localite", "nom_commune", "city", "ville_livraison"),
    "code_postal": ("code_postal", "cp", "codepostal", "postcode", "code_post"),
    "adresse": ("adresse", "adresse_postale", "address", "lieu", "lieu_de_livraison", "lieu_livraison", "rue"),
    "lat": ("lat", "latitude", "y"),
    "lon": ("lon", "lng", "long", "longitude", "x"),
    "insee": ("insee", "code_insee", "code_commune", "codgeo", "citycode", "com_insee"),
    "jour": ("jour", "jours", "jour_de_livraison", "jour_livraison", "jours_de_livraison", "livraison"),
    "horaire": ("horaire", "horaires", "heure", "heures", "creneau", "heure_livraison"),
    "frequence": ("frequence", "frequence_livraison", "periodicite"),
    "precisions_livraison": ("precisions_livraison", "notes_livraison", "remarques_livraison"),
    "produits": ("produits", "produit", "production", "productions", "products"),
    "categorie": ("categorie", "categories", "type_produit", "type_de_produit"),
    "plateforme": ("plateforme", "outil", "outil_de_gestion", "logiciel", "platform"),
    "site_web": ("site_web", "site", "site_internet", "url", "web", "website"),
    "date_creation": ("date_creation", "date_de_creation", "creation", "creee_le", "fondee_le"),
    "etat": ("etat", "statut", "status"),
    "rna_id": ("rna_id", "rna", "numero_rna", "num_rna"),
    # `email` is private (messages are relayed to it, never shown); `email_public` is shown.
    "email": ("email", "e_mail", "mail", "courriel", "adresse_mail", "email_prive", "private_email"),
    "email_public": ("email_public", "courriel_public", "contact_email", "email_contact_public"),
    "telephone": ("telephone", "tel", "phone", "portable"),
    "producteur_ids": ("producteur_ids", "producteurs", "ferme_ids", "fermes", "farm_ids"),
    "amap_ids": ("amap_ids", "amaps"),
    "societe": ("societe", "structure", "exploitation", "raison_sociale", "entreprise"),
    "precision": ("precision", "precision_localisation", "precision_geocodage"),
    "description": ("description", "presentation"),
    "type": ("type", "type_amap"),
    "labels": ("labels", "label", "certification"),
    "amap_id": ("amap_id", "amap", "id_amap", "code_amap"),
    "producteur_id": ("producteur_id", "producteur", "ferme_id", "ferme", "id_producteur", "id_ferme", "farm_id"),
    "depuis": ("depuis", "date_debut", "debut", "since"),
    "jusqu_au": ("jusqu_au", "date_fin", "fin", "until"),
    "actif": ("actif", "en_cours", "active"),
    "nouveaux_membres": ("nouveaux_membres", "adhesions", "inscriptions", "places"),
    "rayon_livraison_km": ("rayon_livraison_km", "rayon_de_livraison", "rayon_livraison", "delivery_radius_km"),
}

KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "amap": [
        "id",
        "nom",
        "ville",
        "code_postal",
        "adresse",
        "lat",
        "lon",
        "insee",
        "jour",
        "horaire",
        "frequence",
        "precisions_livraison",
        "produits",
        "categorie",
        "plateforme",
        "site_web",
        "date_creation",
        "etat",
        "rna_id",
        "email",
        "email_public",
        "telephone",
        "producteur_ids",
        "description",
        "type",
        "precision",
        "nouveaux_membres",
    ],
    "farm": [
        "id",
        "nom",
        "societe",
        "ville",
        "code_postal",
        "adresse",
        "lat",
        "lon",
        "insee",
        "precision",
        "produits",
        "categorie",
        "frequence",
        "site_web",
        "email",
        "email_public",
        "telephone",
        "amap_ids",
        "description",
        "labels",
        "rayon_livraison_km",
    ],
    "partnership": ["amap_id", "producteur_id", "produits", "categorie", "depuis", "jusqu_au", "actif"],
}


def normalize_header(text: str) -> str:
    """'Code postal', 'CODE_POSTAL' and 'code-postal ' all give 'code_postal'."""
    return re.sub(r"[^a-z0-9]+", "_", parsing.fold(text)).strip("_")


def _canonical_field(name: str) -> str | None:
    key = normalize_header(name)
    for canonical, aliases in FIELD_ALIASES.items():
        if key == canonical or key in aliases:
            return canonical
    return None


def resolve_columns(
    *, table: Table, kind: str, mapping: Mapping[str, str] | None, report: ImportReport
) -> dict[str, str]:
    """Canonical field → the file's header, from the explicit mapping first, then the usual names."""
    wanted = KIND_FIELDS[kind]
    by_key: dict[str, str] = {}
    for header in table.headers:
        by_key.setdefault(normalize_header(header), header)
    columns: dict[str, str] = {}
    for target, source_column in (mapping or {}).items():
        canonical = _canonical_field(target)
        if canonical is None or canonical not in wanted:
            report.error(None, target, f"champ inconnu dans --map (champs possibles : {', '.join(sorted(wanted))})")
            continue
        header = by_key.get(normalize_header(source_column))
        if header is None:
            report.error(
                None,
                source_column,
                f"colonne absente du fichier (colonnes trouvées : {', '.join(table.headers)})",
            )
            continue
        columns[canonical] = header
    used = set(columns.values())
    for header in table.headers:
        if header in used:
            continue
        canonical = _canonical_field(header)
        if canonical in wanted and canonical not in columns:
            columns[canonical] = header
            used.add(header)
    if table.geometry_columns:
        columns["lon"], columns["lat"] = table.geometry_columns
    ignored = [h for h in table.headers if h not in used and h not in columns.values()]
    if ignored:
        report.notes.append(f"Colonnes ignorées : {', '.join(ignored)}.")
    _check_required(kind=kind, columns=columns, table=table, report=report)
    return columns


def _check_required(*, kind: str, columns: Mapping[str, str], table: Table, report: ImportReport) -> None:
    found = ", ".join(table.headers) or "aucune"

    def missing(name: str, what: str) -> None:
        report.error(None, name, f"colonne obligatoire absente : {what} (colonnes trouvées : {found})")

    if kind in {"amap", "farm"}:
        if "nom" not in columns:
            missing("nom", "le nom (ou indiquez-la avec --map nom=<colonne>)")
        if ("lat" in columns) != ("lon" in columns):
            present, absent = ("lat", "lon") if "lat" in columns else ("lon", "lat")
            missing(absent, f"« {columns[present]} » est là mais pas sa colonne compagne ({absent})")
        locating = {"lat", "ville", "code_postal", "adresse", "insee"}
        if kind == "amap" and not locating & set(columns):
            missing(
                "ville", "il faut des coordonnées (lat/lon) ou la ville, le code postal, l'adresse ou le code INSEE"
            )
    else:
        for name, what in (("amap_id", "l'identifiant de l'AMAP"), ("producteur_id", "l'identifiant du producteur")):
            if name not in columns:
                missing(name, what)


def mapping_from_options(items: Iterable[str]) -> dict[str, str]:
    """`--map nom=Nom_AMAP` options as {field: column}; ValueError, in French, for a malformed one."""
    mapping = {}
    for item in items:
        target, sep, column = item.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise ValueError(f"--map attend CHAMP=COLONNE, par exemple --map nom=Nom_AMAP (reçu « {item} »)")
        mapping[target.strip()] = column.strip()
    return mapping
