"""A small Mapbox Vector Tile decoder (points only) for the map tests and benchmarks.

The MVT format is a protobuf message (spec 2.1): Tile { repeated Layer layers = 3 }, Layer
{ name = 1, features = 2, keys = 3, values = 4, extent = 5 }, Feature { id = 1, tags = 2,
type = 3, geometry = 4 }. Reading it needs only varints and length-delimited fields.
"""

import math
import struct

_WEB_MERCATOR_HALF = 20037508.342789244


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _packed(data: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(value)
    return values


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(data: bytes):
    for number, _wire, raw in _fields(data):
        if number == 1:
            return raw.decode("utf-8")
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number in (4, 5):
            return raw
        if number == 6:
            return _zigzag(raw)
        if number == 7:
            return bool(raw)
    return None


def _points(geometry: list[int]) -> list[tuple[int, int]]:
    points, x, y, i = [], 0, 0, 0
    while i < len(geometry):
        command, count = geometry[i] & 7, geometry[i] >> 3
        i += 1
        if command == 7:  # ClosePath
            continue
        for _ in range(count):
            x += _zigzag(geometry[i])
            y += _zigzag(geometry[i + 1])
            i += 2
            if command == 1:
                points.append((x, y))
    return points


def decode(tile: bytes) -> dict[str, dict]:
    """{layer name: {"extent": int, "features": [{"id", "properties", "points": [(x, y)]}]}}."""
    layers = {}
    for number, _wire, layer_bytes in _fields(tile):
        if number != 3:
            continue
        name, extent, keys, values, raw_features = "", 4096, [], [], []
        for field, _w, raw in _fields(layer_bytes):
            if field == 1:
                name = raw.decode("utf-8")
            elif field == 2:
                raw_features.append(raw)
            elif field == 3:
                keys.append(raw.decode("utf-8"))
            elif field == 4:
                values.append(_value(raw))
            elif field == 5:
                extent = raw
        features = []
        for raw in raw_features:
            feature = {"id": None, "properties": {}, "points": []}
            for field, _w, value in _fields(raw):
                if field == 1:
                    feature["id"] = value
                elif field == 2:
                    tags = _packed(value)
                    for k, v in zip(tags[::2], tags[1::2], strict=True):
                        feature["properties"][keys[k]] = values[v]
                elif field == 4:
                    feature["points"] = _points(_packed(value))
            features.append(feature)
        layers[name] = {"extent": extent, "features": features}
    return layers


def tile_point_to_lon_lat(z: int, x: int, y: int, px: float, py: float, extent: int = 4096) -> tuple[float, float]:
    """Tile-local coordinates back to WGS84 degrees."""
    size = 2 * _WEB_MERCATOR_HALF / 2**z
    mx = -_WEB_MERCATOR_HALF + (x + px / extent) * size
    my = _WEB_MERCATOR_HALF - (y + py / extent) * size
    lon = mx / _WEB_MERCATOR_HALF * 180.0
    lat = math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)
    return lon, lat


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a point."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y
