"""Creating a network with its territory: drawn polygons are validated, repaired or refused with a
message a network's volunteer understands (`directory/services_networks.py`)."""

import json

import pytest
from django.core.exceptions import ValidationError

from directory.services_networks import network_create, territory_from_geojson

pytestmark = pytest.mark.django_db


def test_network_create_repairs_a_bow_tie_and_refuses_bad_territories():
    bow_tie = {"type": "Polygon", "coordinates": [[[4.8, 47.2], [5.2, 47.45], [5.2, 47.2], [4.8, 47.45], [4.8, 47.2]]]}
    repaired = territory_from_geojson(source=bow_tie)
    assert repaired.valid and len(repaired) == 2
    cases = {
        "pas du json": "JSON invalide",
        json.dumps({"type": "Point", "coordinates": [5, 47]}): "doit être un polygone",
        json.dumps({"type": "Polygon", "coordinates": [[[5, 47], [5, 47], [5, 47], [5, 47]]]}): "sans surface",
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[850000, 6700000], [860000, 6700000], [860000, 6710000], [850000, 6700000]]],
            }
        ): "Lambert-93",  # noqa: E501
        json.dumps(
            {"type": "Polygon", "coordinates": [[[-40, 30], [-39, 30], [-39, 31], [-40, 30]]]}
        ): "aucune commune",
        json.dumps(
            {"type": "Polygon", "coordinates": [[[47.2, 4.8], [47.45, 4.8], [47.45, 5.2], [47.2, 4.8]]]}
        ): "inversées",
        json.dumps({"type": "FeatureCollection", "features": []}): "aucune géométrie",
    }
    for source, message in cases.items():
        with pytest.raises(ValidationError, match=message):
            territory_from_geojson(source=source)
    with pytest.raises(ValidationError) as error:
        network_create(name="", department_codes=["999"])
    assert set(error.value.message_dict) == {"name", "departments"}
    with pytest.raises(ValidationError) as error:
        network_create(name="Réseau sans territoire")
    assert "territory" in error.value.message_dict
