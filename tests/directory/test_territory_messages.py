"""A drawn territory that cannot be read is refused in words a volunteer understands (issue 17)."""

import json

import pytest
from django.core.exceptions import ValidationError

from directory.services_networks import territory_from_geojson


@pytest.mark.parametrize(
    "ring",
    [
        [[-0.5, 44.8], [-0.4, 44.8], [-0.4, 44.9]],  # three points
        [[-0.5, 44.8], [-0.4, 44.8], [-0.4, 44.9], [-0.5, 44.85]],  # not closed
    ],
)
def test_an_unreadable_polygon_is_explained_without_the_librarys_words(ring):
    with pytest.raises(ValidationError) as caught:
        territory_from_geojson(source=json.dumps({"type": "Polygon", "coordinates": [ring]}))
    message = " ".join(caught.value.messages)
    # The fault is named in French: which ring, and what is wrong with it.
    assert message.startswith("Le polygone est mal formé") and "anneau 1" in message
    assert "GEOS" not in message and "Error" not in message
