"""Partnership files: links between an AMAP and a farm of the same source."""

import pytest
from django.core.management import CommandError

from directory.models import Partnership

from .support import run_import, write


def test_partnership_file(db, tmp_path):
    run_import(write(tmp_path, "a.csv", "id,nom,ville\nA1,AMAP A,Bordeaux\n"), "amap", "--source", "p", "--commit")
    run_import(
        write(tmp_path, "f.csv", "id,nom,ville,produit\nF1,Ferme F,Libourne,miel\n"),
        "farm",
        "--source",
        "p",
        "--commit",
    )
    links = write(tmp_path, "l.csv", "amap_id,producteur_id,produit,depuis\nA1,F1,miel,2020-04-01\nA1,F9,pain,\n")
    assert_rejected_links = pytest.raises(CommandError)
    with assert_rejected_links as caught:
        run_import(links, "partnership", "--source", "p", "--commit")
    assert "ligne 3, colonne « producteur_id » : producteur « F9 » inconnu" in str(caught.value)
    assert Partnership.objects.count() == 0
    links.write_text("amap_id,producteur_id,produit,depuis\nA1,F1,miel,2020-04-01\n", encoding="utf-8")
    run_import(links, "partnership", "--source", "p", "--commit")
    partnership = Partnership.objects.get()
    assert (partnership.product.slug, partnership.since.isoformat()) == ("miel", "2020-04-01")
