"""Checking a feature's geometry: any JSON value gets a valid shape or a French reason, never a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from directory.importing.geometry import GeometryInvalid, GeometryMissing, check_geojson_geometry

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-200, 200), st.booleans(), st.text(max_size=3)
)
positions = st.lists(numbers, max_size=5)
coordinates = st.recursive(positions, lambda inner: st.lists(inner, max_size=5), max_leaves=20)
geometries = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
            ),
            "coordinates": coordinates,
        }
    ),
    st.fixed_dictionaries({"type": st.just("GeometryCollection"), "geometries": st.lists(st.none(), max_size=2)}),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(),
)


@settings(max_examples=400, derandomize=True)
@given(geometries)
def test_any_geometry_is_a_valid_shape_or_a_french_reason(geometry):
    try:
        shape = check_geojson_geometry(geometry)
    except (GeometryMissing, GeometryInvalid) as error:
        assert str(error)
    else:
        assert shape.is_valid and not shape.is_empty
