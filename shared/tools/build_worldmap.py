"""Build the world map the HTML report draws: country outlines as SVG path data, in the package.

    python -m shared.tools.build_worldmap [--node-modules DIR] [--out FILE]

Reads ``node_modules/world-atlas/countries-110m.json`` (world-atlas 2.0.2, ISC licence, Copyright
2013-2019 Michael Bostock; the outlines are Natural Earth's 1:110m Admin 0 countries, public
domain), decodes the TopoJSON (quantised, delta-encoded arcs), projects every ring equirectangularly
onto the report's 720 x 360 map (x = longitude, y = latitude; see
:func:`shared.reports.html.project`) and writes ``shared/reports/data/world-110m.json``:
``{"source": ..., "licence": ..., "width": 720, "height": 360, "countries": [{"id", "name", "d"}]}``
with one SVG path (``d``, one decimal) per country. The output is committed, so the package ships
it without a build step; run this again only to change the source data.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "world-atlas/countries-110m.json"
WIDTH = 720
HEIGHT = 360
CREDIT = (
    "Country outlines: Natural Earth 1:110m (public domain, naturalearthdata.com) "
    "via world-atlas 2.0.2 (ISC licence, © 2013-2019 Michael Bostock)"
)

Point = tuple[float, float]


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """Every arc of a quantised TopoJSON topology as (longitude, latitude) points."""
    transform = topology.get("transform")
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        points: list[Point] = []
        if transform is None:
            points = [(float(p[0]), float(p[1])) for p in arc]
        else:
            (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
            x = y = 0
            for dx, dy in arc:
                x += dx
                y += dy
                points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring_points(ring: Sequence[int], arcs: list[list[Point]]) -> list[Point]:
    """A ring's points: its arcs in order (``~i`` = arc ``i`` reversed), shared end points once."""
    out: list[Point] = []
    for index in ring:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        out.extend(arc if not out else arc[1:])
    return out


def project(lon: float, lat: float) -> Point:
    return (lon + 180.0) / 360.0 * WIDTH, (90.0 - lat) / 180.0 * HEIGHT


def unwrap(points: list[Point]) -> list[list[Point]]:
    """A ring as drawn on the flat map: a ring that crosses the antimeridian (a step of more than 180°
    of longitude, e.g. Russia's Chukotka) is drawn twice, shifted east and west, so that the map's edges
    clip it instead of a stripe running across the whole map."""
    jumps = [i for i in range(1, len(points)) if abs(points[i][0] - points[i - 1][0]) > 180]
    if not jumps:
        return [points]
    if len(jumps) % 2 == 1:
        # a ring around a pole (Antarctica): cut at the crossing and close it along the map's edge
        i = jumps[0]
        ring = points[i:] + points[1:i] if points[0] == points[-1] else points[i:] + points[:i]
        pole = -90.0 if sum(lat for _, lat in ring) < 0 else 90.0
        first, last = ring[0], ring[-1]
        return [[*ring, (math.copysign(180.0, last[0]), pole), (math.copysign(180.0, first[0]), pole)]]
    east = [(lon + 360.0 if lon < 0 else lon, lat) for lon, lat in points]
    west = [(lon - 360.0 if lon > 0 else lon, lat) for lon, lat in points]
    return [east, west]


def path_data(polygons: Sequence[Sequence[Sequence[int]]], arcs: list[list[Point]]) -> str:
    """SVG path data of polygons (lists of rings of arc indexes), one decimal, duplicate points dropped."""
    parts: list[str] = []
    for polygon in polygons:
        for ring in polygon:
            for points in unwrap(ring_points(ring, arcs)):
                coords: list[str] = []
                for lon, lat in points:
                    x, y = project(lon, lat)
                    text = f"{x:.1f} {y:.1f}"
                    if not coords or coords[-1] != text:
                        coords.append(text)
                if len(coords) >= 3:
                    parts.append("M" + "L".join(coords) + "Z")
    return "".join(parts)


def build(topology: dict[str, Any]) -> dict[str, Any]:
    arcs = decode_arcs(topology)
    countries: list[dict[str, str]] = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        kind = geometry.get("type")
        if kind == "Polygon":
            polygons = [geometry["arcs"]]
        elif kind == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        d = path_data(polygons, arcs)
        if d:
            name = str((geometry.get("properties") or {}).get("name", ""))
            countries.append({"id": str(geometry.get("id", "")), "name": name, "d": d})
    countries.sort(key=lambda c: (c["name"], c["id"]))
    return {"source": SOURCE, "licence": CREDIT, "width": WIDTH, "height": HEIGHT, "countries": countries}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--node-modules", default=str(ROOT / "node_modules"))
    p.add_argument("--out", default=str(ROOT / "shared" / "reports" / "data" / "world-110m.json"))
    args = p.parse_args(argv)
    topology = json.loads((Path(args.node_modules) / SOURCE).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = build(topology)
    out.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(data['countries'])} countries, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
