"""Reading files: encodings, empty files, XLSX cells, GeoJSON and GeoPackage geometries."""

import pytest

from directory.models import Amap, Farm, LocationPrecision

from .support import HEADER, assert_rejected, run_import, write


def test_wrong_encoding_names_the_line_and_suggests_cp1252(db, tmp_path):
    path = write(
        tmp_path,
        "excel.csv",
        "nom;ville;code_postal\nAMAP;Bordeaux;33000\nAMAP de Bègles;Bègles;33130\n",
        encoding="cp1252",
    )
    assert_rejected(path, "amap", "ligne 3", "UTF-8", "--encoding cp1252")
    report = run_import(path, "amap", "--source", "t", "--encoding", "cp1252", "--commit")
    assert "AMAP : 2 créée(s)" in report
    assert Amap.objects.filter(name="AMAP de Bègles", commune_id="33039").exists()


def test_utf8_with_bom_is_read(db, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("nom,ville\nAMAP,Mérignac\n".encode("utf-8-sig"))
    run_import(path, "amap", "--source", "t", "--commit")
    assert Amap.objects.get().commune_id == "33281"


def test_old_mac_line_endings_are_read(db, tmp_path):
    path = write(
        tmp_path, "mac.csv", "nom;ville;code_postal\rAMAP de Pessac;Pessac;33600\rAMAP de Talence;Talence;33400\r"
    )
    report = run_import(path, "amap", "--source", "t", "--commit")
    assert "2 ligne(s) lue(s)" in report
    assert set(Amap.objects.values_list("commune_id", flat=True)) == {"33318", "33522"}


def test_a_bad_byte_anywhere_is_named_before_a_broken_row_above_it(db, tmp_path):
    # Line 2 has a value too many; line 4 has a byte that is not UTF-8: the byte is the file's fault.
    text = "nom;ville\nAMAP;Bordeaux;trop\nAMAP 2;Pessac\nAMAP de Bègles;Bègles\n"
    message = assert_rejected(write(tmp_path, "excel.csv", text, encoding="cp1252"), "amap", "ligne 4", "UTF-8")
    assert "valeurs pour" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "le fichier est vide"), ("\n\n", "le fichier est vide"), (HEADER, "aucune ligne de données")],
)
def test_empty_files_and_header_only(db, tmp_path, text, fragment):
    assert_rejected(write(tmp_path, "vide.csv", text), "amap", fragment)


def test_xlsx_with_numeric_cells_and_french_headers(db, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Nom", "Code postal", "Commune", "Latitude", "Longitude", "Jour de livraison", "Horaires"])
    sheet.append(["AMAP de Pessac", 33600, "Pessac", 44.8067, -0.6311, "Vendredi", "18h00-19h30"])
    sheet.append(["AMAP de Libourne", 33500, "Libourne", None, None, "Mardi", None])
    path = tmp_path / "amaps.xlsx"
    workbook.save(path)
    run_import(path, "amap", "--source", "xlsx", "--commit")
    pessac, libourne = Amap.objects.get(name="AMAP de Pessac"), Amap.objects.get(name="AMAP de Libourne")
    assert (pessac.commune_id, pessac.postal_code, pessac.delivery_weekdays) == ("33318", "33600", [5])
    assert (libourne.commune_id, libourne.location_precision) == ("33243", LocationPrecision.COMMUNE)


def test_geojson_points_and_polygons(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint
    from shapely.geometry import box

    frame = geopandas.GeoDataFrame(
        {"id": ["G1", "G2"], "nom": ["AMAP de Talence", "AMAP du parc"], "jour": ["Jeudi", "Mercredi"]},
        geometry=[ShapelyPoint(-0.5890, 44.8080), box(-0.605, 44.835, -0.600, 44.840)],  # Talence; a park in Bordeaux
        crs="EPSG:4326",
    )
    path = tmp_path / "amaps.geojson"
    frame.to_file(path, driver="GeoJSON")
    run_import(path, "amap", "--source", "geo", "--commit")
    assert Amap.objects.get(external_id="G1").commune_id == "33522"  # Talence
    assert Amap.objects.get(external_id="G2").commune_id == "33063"  # Bordeaux: the polygon's inner point


def test_geopackage_in_lambert93_is_reprojected(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint

    frame = geopandas.GeoDataFrame(
        {"nom": ["Ferme de Libourne"], "produits": ["légumes"]},
        geometry=[ShapelyPoint(-0.2430, 44.9150)],  # Libourne
        crs="EPSG:4326",
    ).to_crs("EPSG:2154")
    path = tmp_path / "fermes.gpkg"
    frame.to_file(path, driver="GPKG")
    run_import(path, "farm", "--source", "gpkg", "--commit")
    farm = Farm.objects.get()
    assert farm.commune_id == "33243"
    assert farm.location.coords == pytest.approx((-0.2430, 44.9150), abs=1e-6)
    assert list(farm.products.values_list("slug", flat=True)) == ["legumes"]


def test_geo_file_errors_name_the_feature(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint

    frame = geopandas.GeoDataFrame(
        {"nom": ["Bonne", "En Espagne"]}, geometry=[ShapelyPoint(-0.58, 44.84), ShapelyPoint(-3.70, 40.42)], crs=4326
    )
    path = tmp_path / "amaps.geojson"
    frame.to_file(path, driver="GeoJSON")
    assert_rejected(path, "amap", "entité 2", "hors de France")


def _feature(name, geometry):
    return {"type": "Feature", "properties": {"nom": name}, "geometry": geometry}


def _geojson(tmp_path, *features):
    import json

    path = tmp_path / "amaps.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8")
    return path


TALENCE = {"type": "Point", "coordinates": [-0.5890, 44.8080]}  # Talence


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Point", "coordinates": [-0.58]}, "1 nombre au lieu de 2"),
        ({"type": "Point", "coordinates": ["a", 44.8]}, "« a » n'est pas un nombre"),
        (
            {"type": "Polygon", "coordinates": [[[-0.60, 44.83], [-0.59, 44.83], [-0.59, 44.84]]]},
            "il en faut au moins 4",
        ),
        (
            {"type": "Polygon", "coordinates": [[[-0.60, 44.83], [-0.59, 44.83], [-0.59, 44.84], [-0.60, 44.84]]]},
            "anneau 1 non fermé",
        ),
        (  # a bow tie: the outline crosses itself
            {
                "type": "Polygon",
                "coordinates": [[[-0.60, 44.83], [-0.59, 44.84], [-0.59, 44.83], [-0.60, 44.84], [-0.60, 44.83]]],
            },
            "le contour se recoupe lui-même",
        ),
        ({"type": "Circle", "coordinates": [-0.58, 44.84]}, "type de géométrie « Circle » inconnu"),
    ],
)
def test_faulty_geojson_geometry_is_named_by_feature_and_nothing_is_written(db, tmp_path, geometry, reason):
    path = _geojson(tmp_path, _feature("AMAP de Talence", TALENCE), _feature("AMAP fautive", geometry))
    message = assert_rejected(path, "amap", "entité 2, colonne « geometry »", reason)
    assert "entité 1" not in message
    assert not Amap.objects.exists()


def test_null_geometry_falls_back_on_the_commune_or_is_refused_without_one(db, tmp_path):
    located = {"type": "Feature", "properties": {"nom": "AMAP sans point", "ville": "Pessac"}, "geometry": None}
    path = _geojson(tmp_path, _feature("AMAP de Talence", TALENCE), located)
    report = run_import(path, "amap", "--source", "geo", "--commit")
    assert "entité 2, colonne « geometry » : géométrie absente" in report
    assert Amap.objects.get(name="AMAP sans point").commune_id == "33318"  # Pessac

    Amap.objects.all().delete()
    empty = _feature("AMAP nulle part", {"type": "GeometryCollection", "geometries": []})
    assert_rejected(_geojson(tmp_path, _feature("AMAP de Talence", TALENCE), empty), "amap", "entité 2", "impossible")
    assert not Amap.objects.exists()


def test_geopackage_with_an_invalid_polygon_names_the_feature(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint
    from shapely.geometry import Polygon

    bow_tie = Polygon([(-0.60, 44.83), (-0.59, 44.84), (-0.59, 44.83), (-0.60, 44.84)])
    frame = geopandas.GeoDataFrame(
        {"nom": ["Ferme de Talence", "Ferme en nœud papillon"]},
        geometry=[ShapelyPoint(-0.5890, 44.8080), bow_tie],
        crs="EPSG:4326",
    )
    path = tmp_path / "fermes.gpkg"
    frame.to_file(path, driver="GPKG")
    assert_rejected(path, "farm", "entité 2, colonne « geometry »", "se recoupe")
    assert not Farm.objects.exists()
