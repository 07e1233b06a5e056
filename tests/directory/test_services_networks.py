"""Creating a network with its territory: drawn polygons are validated, repaired or refused with a
message a network's volunteer understands (`directory/services_networks.py`)."""

import json

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Polygon", "coordinates": [[[4.8, 47.2], [5.2, 47.45], [5.2, 47.2]]]}, "au moins 4"),
        ({"type": "Polygon", "coordinates": [[[4.8, 47.2], [5.2, 47.45], [5.2, 47.2], [4.9, 47.3]]]}, "non fermé"),
        ({"type": "Polygon", "coordinates": [[[4.8], [5.2, 47.45], [5.2, 47.2], [4.8]]]}, "1 nombre au lieu de 2"),
        ({"type": "Polygon", "coordinates": [[4.8, 47.2]]}, "une position doit être une liste"),
        ({"type": "MultiPolygon", "coordinates": [[[[4.8, 47.2], "x", [5.2, 47.2], [4.8, 47.2]]]]}, "position"),
    ],
)
def test_malformed_polygons_get_a_french_reason_never_the_geos_text(geometry, reason):
    with pytest.raises(ValidationError) as error:
        territory_from_geojson(source=json.dumps({"type": "Feature", "properties": {}, "geometry": geometry}))
    message = " ".join(error.value.messages)
    assert "Le polygone est mal formé" in message and reason in message
    assert "GEOS" not in message


ordinates = st.one_of(st.floats(4.0, 6.0), st.integers(4, 48), st.text(max_size=2), st.none())
rings = st.lists(st.lists(ordinates, max_size=3), max_size=6)


@settings(max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rings, min_size=1, max_size=2))
def test_any_drawn_polygon_is_stored_valid_or_refused_in_french(rings_):
    source = json.dumps({"type": "Polygon", "coordinates": rings_})
    try:
        territory = territory_from_geojson(source=source)
    except ValidationError as error:
        assert "GEOS" not in " ".join(error.messages)
    else:
        assert territory.valid and territory.srid == 4326
