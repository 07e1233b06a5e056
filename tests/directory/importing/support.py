"""Running import_directory in tests: the real Gironde files, small files written on the fly."""

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from directory.models import Amap, Farm, Partnership

GIRONDE = Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026"
SOURCE = "gironde-2026"
HEADER = "id;nom;ville;code_postal;lat;lon\n"


def run_import(path, kind, *options):
    out = io.StringIO()
    call_command("import_directory", str(path), "--kind", kind, *options, stdout=out)
    return out.getvalue()


def import_gironde():
    amaps = run_import(GIRONDE / "amaps.csv", "amap", "--source", SOURCE, "--commit")
    farms = run_import(GIRONDE / "producteurs.csv", "farm", "--source", SOURCE, "--commit")
    return amaps, farms


def read_rows(name):
    with (GIRONDE / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(tmp_path, name, text, *, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def counts():
    return Amap.objects.count(), Farm.objects.count(), Partnership.objects.count()


def assert_rejected(path, kind, *expected, options=()):
    before = counts()
    with pytest.raises(CommandError) as caught:
        run_import(path, kind, "--commit", *options)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert "rien n'a été enregistré" in message or "vide" in message or "aucune ligne" in message
    assert counts() == before
    return message
