"""The world-map builder: TopoJSON decoding, rings across the antimeridian and around a pole, the shipped file."""

from __future__ import annotations

import json
from pathlib import Path

from shared.tools.build_worldmap import CREDIT, build, decode_arcs, path_data, ring_points, unwrap

SHIPPED = Path(__file__).resolve().parents[2] / "shared" / "reports" / "data" / "world-110m.json"

# A quantised topology in the TopoJSON specification's shape: delta-encoded integer arcs and a transform.
TOPOLOGY = {
    "type": "Topology",
    "transform": {"scale": [1.0, 0.5], "translate": [-10.0, 20.0]},
    "arcs": [
        [[0, 0], [10, 0], [0, 20]],  # (-10, 20) → (0, 20) → (0, 30)
        [[10, 20], [-10, 0], [0, -20]],  # (0, 30) → (-10, 30) → (-10, 20)
    ],
    "objects": {
        "countries": {
            "type": "GeometryCollection",
            "geometries": [
                {"type": "Polygon", "arcs": [[0, 1]], "id": "001", "properties": {"name": "Squareland"}},
                {"type": "Point", "coordinates": [0, 0], "id": "002", "properties": {"name": "Dot"}},
            ],
        }
    },
}


def test_arcs_are_decoded_from_deltas() -> None:
    arcs = decode_arcs(TOPOLOGY)
    assert arcs == [[(-10.0, 20.0), (0.0, 20.0), (0.0, 30.0)], [(0.0, 30.0), (-10.0, 30.0), (-10.0, 20.0)]]
    # ~0 is arc 0 reversed; shared end points appear once
    assert ring_points([0, 1], arcs) == [(-10.0, 20.0), (0.0, 20.0), (0.0, 30.0), (-10.0, 30.0), (-10.0, 20.0)]
    assert ring_points([~1, ~0], arcs) == [(-10.0, 20.0), (-10.0, 30.0), (0.0, 30.0), (0.0, 20.0), (-10.0, 20.0)]


def test_polygons_become_equirectangular_path_data() -> None:
    data = build(TOPOLOGY)
    # x = (lon + 180) / 360 * 720, y = (90 - lat) / 180 * 360
    assert data == {
        "source": "world-atlas/countries-110m.json",
        "licence": CREDIT,
        "width": 720,
        "height": 360,
        "countries": [
            {"id": "001", "name": "Squareland", "d": "M340.0 140.0L360.0 140.0L360.0 120.0L340.0 120.0L340.0 140.0Z"}
        ],
    }


def test_a_ring_across_the_antimeridian_is_drawn_on_both_edges() -> None:
    ring = [(170.0, 60.0), (-170.0, 60.0), (-170.0, 70.0), (170.0, 70.0), (170.0, 60.0)]
    east, west = unwrap(ring)
    assert east == [(170.0, 60.0), (190.0, 60.0), (190.0, 70.0), (170.0, 70.0), (170.0, 60.0)]
    assert west == [(-190.0, 60.0), (-170.0, 60.0), (-170.0, 70.0), (-190.0, 70.0), (-190.0, 60.0)]


def test_a_ring_around_the_pole_is_closed_along_the_map_edge() -> None:
    # a band around the south pole: west to east along -70, crossing the antimeridian once
    ring = [(-60.0, -70.0), (60.0, -70.0), (179.0, -70.0), (-179.0, -70.0), (-60.0, -70.0)]
    (closed,) = unwrap(ring)
    assert closed == [(-179.0, -70.0), (-60.0, -70.0), (60.0, -70.0), (179.0, -70.0), (180.0, -90.0), (-180.0, -90.0)]
    assert path_data([[[0]]], [closed]).endswith("L0.0 360.0Z")


def test_the_shipped_map_is_natural_earth_110m() -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert (data["width"], data["height"], data["licence"]) == (720, 360, CREDIT)
    names = {c["name"] for c in data["countries"]}
    assert len(data["countries"]) == 177
    assert {"Portugal", "Brazil", "Japan", "Russia", "Antarctica", "Fiji"} <= names
    assert all(c["d"].startswith("M") and c["d"].endswith("Z") for c in data["countries"])
    assert SHIPPED.stat().st_size < 200_000
