"""Network coverage: figures on constructed cases and on the real Gironde directory, the
dashboard, downloads, API, emerging networks and the standalone report."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from pyproj import Geod

from coverage.exports import commune_rows
from coverage.figures import coverage_for_network
from coverage.territory import TerritoryError
from directory.models import Amap, Network
from directory.services_networks import network_create
from geo.models import Commune, Department, Region
from tests.factories import (
    BORDEAUX,
    LIBOURNE,
    AmapFactory,
    FarmFactory,
    NetworkFactory,
    PartnershipFactory,
    UserFactory,
    commune,
    product,
)
from tests.test_jobs import run_worker

GEOD = Geod(ellps="WGS84")
GIRONDE_SOURCE = "amap-gironde-2026"
GIRONDE_DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026"
GAZETTEER = Path(settings.BASE_DIR).parent / "shared" / "data" / "gazetteer-derived" / "communes_gazetteer.csv"
ARCACHON = Point(-1.1680, 44.6586, srid=4326)  # Arcachon town centre (33009)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def gironde_network(**kwargs):
    return NetworkFactory(
        name="Réseau Inter-AMAP Gironde",
        slug="inter-amap-gironde",
        departments=[Department.objects.get(code="33")],
        **kwargs,
    )


def load_gironde_amaps(network=None) -> pd.DataFrame:
    """The real Gironde directory through the importer (read from shared data, never copied)."""
    out = io.StringIO()
    for name, kind in (("amaps.csv", "amap"), ("producteurs.csv", "farm")):
        call_command(
            "import_directory", str(GIRONDE_DATA / name), kind=kind, source=GIRONDE_SOURCE, commit=True, stdout=out
        )
    if network is not None:
        network.amaps.set(Amap.objects.filter(source=GIRONDE_SOURCE))
    return pd.read_csv(GIRONDE_DATA / "amaps.csv", dtype=str, keep_default_na=False)


def independent_gironde_shares(amaps: pd.DataFrame, radii_km) -> dict[float, float]:
    """Reference-point coverage computed here with GeoPandas + pyproj from the shared gazetteer."""
    table = pd.read_csv(GAZETTEER, dtype={"insee": str, "departement_code": str})
    communes = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326").query(
        "departement_code == '33' and type == 'COM'"
    )
    # The importer reads "fermé" as closed and "désabonné" as dormant: neither is active.
    active = amaps[~amaps["etat"].isin(["fermé", "désabonné"])]
    lon = [float(v) if v else None for v in active["lon"]]
    lat = [float(v) if v else None for v in active["lat"]]
    for i, (row_id, x) in enumerate(zip(active["id"], lon, strict=True)):
        if x is None:
            # No coordinates in the file (Le radis noir, Bègles): the importer placed it in its
            # commune; that one point is taken from the database.
            placed = Amap.objects.get(source=GIRONDE_SOURCE, external_id=row_id).location
            lon[i], lat[i] = placed.x, placed.y
    lon, lat = np.array(lon), np.array(lat)
    n, m = len(communes), len(active)
    _a, _b, d = GEOD.inv(
        np.repeat(communes.geometry.x.to_numpy(), m),
        np.repeat(communes.geometry.y.to_numpy(), m),
        np.tile(lon, n),
        np.tile(lat, n),
    )
    nearest = d.reshape(n, m).min(axis=1)
    population = communes["population_2023"].to_numpy()
    return {r: population[nearest <= r * 1000].sum() / population.sum() for r in radii_km}


def computed_page(client, url, query=None):
    """The dashboard once its figures are stored: the first visit only queues the job that computes them."""
    client.get(url, query)
    run_worker("coverage")
    return client.get(url, query)


# --- the real Gironde directory ----------------------------------------------------------------


def test_gironde_reference_point_coverage_matches_an_independent_computation():
    network = gironde_network()
    amaps = load_gironde_amaps(network)
    expected = independent_gironde_shares(amaps, (5, 10, 20))
    for radius in (5, 10, 20):
        result = coverage_for_network(network=network, radius_km=radius)
        figure = result["reference_point"]
        assert figure["method_label"] == "point de référence de la commune"
        assert figure["share"] == pytest.approx(expected[radius], abs=1e-6), radius
    # SOURCE.txt of the data set: ~80 % of Gironde residents within 5 km, ~92 % within 10 km.
    assert expected[5] == pytest.approx(0.80, abs=0.01)
    assert expected[10] == pytest.approx(0.92, abs=0.01)
    result = coverage_for_network(network=network, radius_km=10)
    assert result["figures"]["amaps"] == 105  # 108 in the file: 2 "fermé", 1 "désabonné"
    assert result["figures"]["population"] == 1_690_493  # INSEE 2023, the 534 communes of Gironde
    assert result["figures"]["amaps_per_100k"] == pytest.approx(105 / 1_690_493 * 1e5, abs=0.01)
    # The area-weighted variant is computed for a département and named.
    assert result["area_weighted"]["method_label"] == "surface pondérée"
    assert 0.85 < result["area_weighted"]["share"] < 0.97
    # The 10 km white zones of Gironde: Arcachon basin and Médoc, with their distance to an AMAP.
    names = [z["names"][0] for z in result["white_zones"]["communes"]]
    assert names[0] == "La Teste-de-Buch"
    assert all(z["nearest_km"] > 10 for z in result["white_zones"]["communes"])
    populations = [z["population"] for z in result["white_zones"]["communes"]]
    assert populations == sorted(populations, reverse=True) and min(populations) >= 1000
    assert any("Lesparre-Médoc" in z["names"] for z in result["white_zones"]["groups"])
    # Products through the producers' links to AMAPs (partnerships made by the importer).
    gaps = {row["slug"]: row for row in result["product_gaps"]}
    assert gaps["legumes"]["amaps"] >= 5 and 0 < gaps["legumes"]["share"] < result["reference_point"]["share"]
    assert gaps["pain"]["missing_communes"] > 0 and gaps["pain"]["largest_missing"]
    # History from the creation dates in the data.
    years = result["history"]["years"]
    assert years[-1]["year"] == dt.date.today().year and years[0]["created"] >= 1
    assert sum(y["created"] for y in years) == result["history"]["dated_amaps"]


# --- constructed cases --------------------------------------------------------------------------


@pytest.fixture
def small_directory():
    """A Gironde network with AMAPs, farms and partnerships placed in known communes."""
    network = gironde_network()
    bordeaux = AmapFactory(name="AMAP Bordeaux", location=BORDEAUX, founded_on=dt.date(2010, 3, 1))
    libourne = AmapFactory(
        name="AMAP Libourne", location=LIBOURNE, commune=commune("33243"), founded_on=dt.date(2015, 9, 1)
    )
    AmapFactory(
        name="AMAP fermée",
        location=ARCACHON,
        commune=commune("33009"),
        status=Amap.Status.CLOSED,
        founded_on=dt.date(2012, 1, 1),
        closed_on=dt.date(2018, 6, 30),
    )
    # A member AMAP just across the border (Dordogne) and a non-member one there.
    member_outside = AmapFactory(
        name="AMAP Sainte-Foy membre", location=Point(0.2190, 44.8420, srid=4326), commune=commune("33402")
    )
    member_outside.commune = Commune.objects.filter(department_id="24").order_by("-population").first()
    member_outside.save()
    member_outside.networks.add(network)
    AmapFactory(name="AMAP Périgueux", location=Point(0.7211, 45.1842, srid=4326), commune=commune("24322"))
    eggs = FarmFactory(name="Ferme aux œufs", products=["oeufs"])
    PartnershipFactory(amap=bordeaux, farm=eggs, product=product("oeufs"))
    bordeaux.products.set([product("miel")])  # declared, but its partnerships say what it offers
    libourne.products.set([product("pain"), product("oeufs")])  # no partnership: declared products count
    FarmFactory(name="Ferme sans AMAP", products=["legumes"], location=LIBOURNE, commune=commune("33243"))
    return network


def test_network_figures_on_constructed_directory(small_directory):
    result = coverage_for_network(network=small_directory, radius_km=5)
    figures = result["figures"]
    # Bordeaux + Libourne + the member across the border; neither the closed one nor Périgueux.
    assert figures["amaps"] == 3 and figures["amaps_members"] == 1
    assert figures["amaps_in_territory"] == 2
    gironde = Department.objects.get(code="33").population
    assert figures["population"] == gironde
    assert figures["amaps_per_100k"] == pytest.approx(2 / gironde * 1e5, abs=0.01)
    assert figures["farms"] == 2 and figures["farms_per_100k"] == pytest.approx(2 / gironde * 1e5, abs=0.01)
    department = next(d for d in result["departments"] if d["code"] == "33")
    assert department["amaps"] == 2 and department["name"] == "Gironde"
    # Bordeaux is covered by the AMAP on its own square; Arcachon (closed AMAP) is not.
    rows = {r["code"]: r for r in commune_rows(result)}
    assert rows["33063"]["covered"] and rows["33063"]["nearest_amap"] == "AMAP Bordeaux"
    assert not rows["33009"]["covered"] and rows["33009"]["nearest_km"] > 40
    assert rows["33063"]["amaps"] == 1


def test_product_gaps_follow_active_partnerships_then_declared_products(small_directory):
    result = coverage_for_network(network=small_directory, radius_km=5, product="oeufs")
    gaps = {row["slug"]: row for row in result["product_gaps"]}
    # Œufs: Bordeaux (partnership) and Libourne (declared, no partnership) → 2 AMAPs.
    assert gaps["oeufs"]["amaps"] == 2
    assert gaps["pain"]["amaps"] == 1  # Libourne only
    assert gaps["miel"]["amaps"] == 0  # Bordeaux declares it, but its partnerships do not carry it
    assert gaps["miel"]["share"] == 0 and gaps["miel"]["missing_population"] == result["figures"]["population"]
    # Pain at 5 km covers exactly the communes near Libourne: a subset of all-AMAP coverage.
    assert 0 < gaps["pain"]["share"] < result["reference_point"]["share"]
    assert gaps["pain"]["largest_missing"][0]["name"] == "Bordeaux"
    assert result["selected_product"]["slug"] == "oeufs"
    rows = {r["code"]: r for r in commune_rows(result)}
    assert rows["33063"]["product_nearest_km"] < 1


def test_opportunities_farms_without_partner_and_amaps_lacking_common_products(small_directory):
    result = coverage_for_network(network=small_directory, radius_km=10)
    opportunities = result["opportunities"]
    assert [f["name"] for f in opportunities["farms_without_partner"]] == ["Ferme sans AMAP"]
    free = opportunities["farms_without_partner"][0]
    assert free["products"] == ["Légumes"] and free["amaps_in_reach"] >= 2
    assert free["amaps_lacking_its_products"] == free["amaps_in_reach"]  # nobody offers vegetables
    # Œufs are offered by both informed AMAPs (100 %): common; pain by 1 of 2 (50 %): common too.
    common = {p["slug"] for p in opportunities["common_products"]}
    assert common == {"oeufs", "pain"}
    lacking = {a["name"]: a["missing"] for a in opportunities["amaps_lacking"]}
    assert lacking == {"AMAP Bordeaux": ["Pain"]}


def test_history_counts_amaps_by_creation_and_closure_dates(small_directory):
    result = coverage_for_network(network=small_directory, radius_km=5)
    history = {y["year"]: y for y in result["history"]["years"]}
    assert min(history) == 2010
    assert history[2010]["active"] == 1 and history[2010]["created"] == 1
    assert history[2012]["active"] == 2  # Bordeaux + Arcachon
    assert history[2016]["active"] == 3  # + Libourne
    assert history[2018]["active"] == 2 and history[2018]["closed"] == 1
    assert history[2016]["share"] > history[2010]["share"]
    assert result["history"]["undated_amaps"] == 1  # the member across the border has no date


def test_cache_is_reused_then_refreshed_when_the_directory_changes(small_directory):
    first = coverage_for_network(network=small_directory, radius_km=5)
    again = coverage_for_network(network=small_directory, radius_km=5)
    assert again["generated_at"] == first["generated_at"] and again["cache_key"] == first["cache_key"]
    AmapFactory(name="AMAP Arcachon", location=ARCACHON, commune=commune("33009"))
    refreshed = coverage_for_network(network=small_directory, radius_km=5)
    assert refreshed["cache_key"] != first["cache_key"]
    assert refreshed["figures"]["amaps"] == first["figures"]["amaps"] + 1
    # A change through a many-to-many (products) also invalidates.
    amap = Amap.objects.get(name="AMAP Arcachon")
    amap.products.add(product("miel"))
    assert coverage_for_network(network=small_directory, radius_km=5)["cache_key"] != refreshed["cache_key"]
    # So does a bulk write, which sends no signal.
    key = coverage_for_network(network=small_directory, radius_km=5)["cache_key"]
    Amap.objects.bulk_create([Amap(name="AMAP importée", location=BORDEAUX, commune=commune("33063"))])
    assert coverage_for_network(network=small_directory, radius_km=5)["cache_key"] != key


def test_network_without_territory_is_refused_and_national_network_covers_france():
    lost = NetworkFactory(level=Network.Level.REGIONAL)
    with pytest.raises(TerritoryError, match="n'a pas de territoire"):
        coverage_for_network(network=lost)
    national = NetworkFactory(slug="miramap", level=Network.Level.NATIONAL)
    AmapFactory(location=BORDEAUX)
    result = coverage_for_network(network=national, radius_km=10)
    assert result["network"]["territory"]["everywhere"]
    assert len(result["regions"]) == 18 and result["figures"]["communes"] > 34_000
    assert result["area_weighted"] is None and "point de référence" in result["area_weighted_note"]
    nouvelle_aquitaine = next(r for r in result["regions"] if r["code"] == "75")
    assert nouvelle_aquitaine["amaps"] == 1 and nouvelle_aquitaine["amaps_per_100k"] > 0


# --- emerging networks ------------------------------------------------------------------------------

SQUARE_AROUND_DIJON = {
    "type": "Feature",
    "properties": {"nom": "Côte-d'Or nord"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[4.85, 47.20], [5.20, 47.20], [5.20, 47.45], [4.85, 47.45], [4.85, 47.20]]],
    },
}


def test_network_create_from_a_geojson_polygon_and_its_dashboard_without_amap():
    network = network_create(name="Réseau AMAP Bourgogne nord", territory_geojson=json.dumps(SQUARE_AROUND_DIJON))
    assert network.status == Network.Status.EMERGING and network.slug == "reseau-amap-bourgogne-nord"
    assert network.custom_territory.valid and network.custom_territory.srid == 4326
    FarmFactory(name="Ferme de Dijon", location=Point(5.04, 47.32, srid=4326), commune=commune("21231"))
    result = coverage_for_network(network=network, radius_km=10)
    assert result["figures"]["amaps"] == 0 and result["reference_point"]["share"] == 0
    assert result["figures"]["population"] > 200_000 and result["figures"]["farms"] == 1
    # The largest communes without an AMAP: Dijon first.
    assert result["white_zones"]["communes"][0]["names"] == ["Dijon"]
    assert result["white_zones"]["communes"][0]["nearest_km"] is None


def test_network_creation_page_is_for_staff_and_explains_errors(client):
    url = reverse("coverage:network_new")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory(is_staff=True))
    response = client.post(url, {"name": "Réseau CVL", "level": "regional", "status": "emerging"})
    assert response.status_code == 400
    assert "Choisissez au moins une région" in response.content.decode()
    response = client.post(
        url,
        {"name": "Réseau CVL", "level": "regional", "status": "emerging", "territory_geojson": '{"type": "Point"}'},
    )
    assert "doit être un polygone" in response.content.decode()
    unclosed = {"type": "Polygon", "coordinates": [[[1.5, 47.5], [2.5, 47.5], [2.5, 48.0], [1.6, 47.9]]]}
    response = client.post(
        url,
        {"name": "Réseau CVL", "level": "regional", "status": "emerging", "territory_geojson": json.dumps(unclosed)},
    )
    assert response.status_code == 400
    assert "Le polygone est mal formé" in response.content.decode() and "GEOS" not in response.content.decode()
    assert not Network.objects.filter(name="Réseau CVL").exists()
    response = client.post(
        url, {"name": "Réseau AMAP Centre-Val de Loire", "level": "regional", "status": "emerging", "regions": ["24"]}
    )
    assert response.status_code == 302
    network = Network.objects.get(name="Réseau AMAP Centre-Val de Loire")
    assert list(network.regions.values_list("code", flat=True)) == ["24"]
    # After creation: a confirmation and the new network's coordination space (issue 14).
    assert response["Location"] == reverse("directory:network_space", args=[network.slug])
    space = client.get(response["Location"])
    assert space.status_code == 200
    assert reverse("coverage:network_coverage", args=[network.slug]) in space.content.decode()
    page = computed_page(client, reverse("coverage:network_coverage", args=[network.slug]))
    assert page.status_code == 200
    assert "Aucune AMAP active" in page.content.decode()


# --- pages, downloads, API, report -------------------------------------------------------------------


def test_dashboard_shows_figures_map_and_charts(client, small_directory):
    response = computed_page(
        client, reverse("coverage:network_coverage", args=[small_directory.slug]), {"radius_km": "7,5"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    for expected in (
        "Couverture du réseau Réseau Inter-AMAP Gironde",
        "point de référence de la commune",
        "surface pondérée",
        'id="chart-curve"',
        'id="chart-departments"',
        'id="chart-years"',
        "Zones blanches",
        "vendor/leaflet/leaflet.js",
        "coverage-legend",
    ):
        assert expected in html, expected
    assert "cdn" not in html.lower() and "unpkg" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"radius_km": "500"}, "ne peut pas dépasser 50"),
        ({"radius_km": "abc"}, "nombre de kilomètres"),
        ({"radius_km": "0"}, "au moins 0,5 km"),
        ({"product": "caviar"}, "Produit inconnu"),
        ({"min_population": "-3"}, "ne peut pas être négatif"),
    ],
)
def test_dashboard_answers_bad_values_with_the_form_in_french(client, small_directory, query, message):
    response = client.get(reverse("coverage:network_coverage", args=[small_directory.slug]), query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_downloads_csv_and_geojson(client, small_directory):
    base = reverse("coverage:network_coverage", args=[small_directory.slug])
    computed_page(client, base, {"radius_km": 5, "product": "pain"})
    computed_page(client, base, {"radius_km": 5})
    response = client.get(base + "communes.csv", {"radius_km": 5, "product": "pain"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("# ") and "point de référence de la commune" in lines[0]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    bordeaux = next(r for r in rows if r["code_insee"] == "33063")
    assert bordeaux["couverte_point_de_reference"] == "oui" and bordeaux["amap"] == "1"
    assert float(bordeaux["distance_amap_produit_km"]) > 5
    communes = json.loads(client.get(base + "communes.geojson", {"radius_km": 5}).content)
    assert communes["type"] == "FeatureCollection" and len(communes["features"]) == 534
    zones = json.loads(client.get(base + "zones-blanches.geojson", {"radius_km": 5}).content)
    assert zones["features"] and zones["features"][0]["properties"]["kind"] in {"commune", "group"}
    assert client.get(base + "secret.txt").status_code == 404
    assert client.get(base + "communes.csv", {"radius_km": "-1"}).status_code == 400


def test_api_coverage_and_white_zones(client, small_directory):
    url = reverse("api-network-coverage", args=[small_directory.slug])
    body = client.get(url, {"radius_km": 5, "product": "oeufs"}).json()
    assert body["figures"]["amaps"] == 3 and body["params"]["product"] == "oeufs"
    assert body["reference_point"]["method_label"] == "point de référence de la commune"
    assert "communes" not in body  # the per-commune table is a download, not in the API
    assert client.get(url, {"radius_km": "7.34"}).json()["params"]["radius_km"] == 7.3  # 100 m steps
    bad = client.get(url, {"radius_km": "80", "product": "caviar", "colour": "red"})
    assert bad.status_code == 400 and set(bad.json()) == {"colour"}
    bad = client.get(url, {"radius_km": "80", "product": "caviar"})
    assert bad.status_code == 400 and set(bad.json()) == {"radius_km", "product"}
    assert client.get(url, {"radius_km": "nan"}).status_code == 400
    lost = NetworkFactory(level=Network.Level.LOCAL)
    refused = client.get(reverse("api-network-coverage", args=[lost.slug]))
    assert refused.status_code == 400 and "territory" in refused.json()
    assert client.get(reverse("api-network-coverage", args=["inconnu"])).status_code == 404
    zones = client.get(
        reverse("api-network-white-zones", args=[small_directory.slug]), {"radius_km": 5, "kind": "groups"}
    )
    assert zones["Content-Type"] == "application/geo+json"
    features = zones.json()["features"]
    assert features and {f["properties"]["kind"] for f in features} == {"group"}
    schema = client.get(reverse("api-schema")).content.decode()
    assert "/api/v1/networks/{slug}/coverage/" in schema and "/api/v1/networks/{slug}/white-zones/" in schema


def test_coverage_report_command_writes_a_standalone_page(small_directory, tmp_path):
    output = tmp_path / "rapport.html"
    call_command("coverage_report", network=small_directory.slug, radius_km=10, output=str(output), verbosity=0)
    html = output.read_text(encoding="utf-8")
    assert "Couverture du réseau Réseau Inter-AMAP Gironde" in html
    assert "L.map(" in html and "<script src=" not in html and '<link rel="stylesheet" href' not in html
    assert 'id="chart-curve"' in html and "surface pondérée" in html
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="inconnu"):
        call_command("coverage_report", network="inconnu", output=str(output))
    with pytest.raises(CommandError, match="rayon"):
        call_command("coverage_report", network=small_directory.slug, radius_km=99, output=str(output))


def test_region_and_multipolygon_territories_are_the_union():
    network = NetworkFactory(level=Network.Level.REGIONAL)
    network.regions.add(Region.objects.get(code="27"))
    network.departments.add(Department.objects.get(code="03"))
    square = Polygon.from_bbox((-0.60, 44.82, -0.55, 44.86))
    network.custom_territory = MultiPolygon(square, srid=4326)
    network.save()
    result = coverage_for_network(network=network, radius_km=10)
    departments = {d["code"] for d in result["departments"]}
    assert {"21", "25", "39", "58", "70", "71", "89", "90", "03", "33"} == departments
