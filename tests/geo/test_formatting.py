"""One rule for every distance the site writes (geo.formatting): 190 m, 1,2 km, 12 km."""

import numpy as np
import pytest

from geo.formatting import distance_code, format_distance
from matching.reasons import format_km, km_codes


@pytest.mark.parametrize(
    ("metres", "text"),
    [
        (0, "moins de 10 m"),
        (9.9, "moins de 10 m"),
        (186.6, "190 m"),  # issue 17: it showed « 0,1 km » (cut, in km)
        (185, "190 m"),  # rounded half up, not cut
        (184.9, "180 m"),
        (994.9, "990 m"),
        (995, "1,0 km"),
        (1049.9, "1,0 km"),
        (1050, "1,1 km"),  # half up
        (1234, "1,2 km"),
        (9949, "9,9 km"),
        (9950, "10 km"),
        (12_400, "12 km"),
        (12_500, "13 km"),
        (154_700, "155 km"),
        (1_234_000, "1\u202f234 km"),
    ],
)
def test_distances_are_rounded_half_up_with_a_french_comma(metres, text):
    assert format_distance(metres) == text


def test_a_distance_object_and_none_are_accepted():
    from django.contrib.gis.measure import D

    assert format_distance(D(m=1234)) == "1,2 km"
    assert format_distance(None) == ""


def test_matching_reasons_state_distances_by_the_same_rule_one_by_one_and_in_bulk():
    metres = np.array([0, 9.9, 185, 186.6, 994.9, 995, 1050, 9949, 9950, 12_500, 250_000.4])
    assert km_codes(metres).tolist() == [distance_code(float(m)) for m in metres]
    assert format_km(186.6) == "à 190 m"
    assert format_km(4321) == "à 4,3 km"
    assert format_km(12_400) == "à 12 km"
