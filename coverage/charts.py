"""Server-rendered SVG charts for the coverage dashboard and report (no JavaScript, no CDN).

Each function returns SVG markup (escaped text, `role="img"`, a title and a description);
pages also show the numbers in a table for screen readers and copy-paste.
"""

from __future__ import annotations

from html import escape

from django.utils.translation import gettext as _

WIDTH = 640
HEIGHT = 280
MARGIN = {"left": 56, "right": 16, "top": 16, "bottom": 44}
INK = "#1d2a1d"
GRID = "#d9d6c8"
BAR = "#2f6b2f"
ACCENT = "#b5541c"


def _svg(*, chart_id: str, title: str, description: str, body: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg class="coverage-chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>{body}</svg>'
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if value <= step:
            return float(step)
    return float(value)


def _fr(value: float, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")
    return text


def coverage_curve_svg(*, curve: list[dict], radius_km: float, title: str, description: str) -> str:
    """Share of the population within X km, for X from 1 to 30 km; the chosen radius marked."""
    left, right, top, bottom = MARGIN["left"], WIDTH - MARGIN["right"], MARGIN["top"], HEIGHT - MARGIN["bottom"]
    xs = [p["radius_km"] for p in curve] or [1.0]
    x_min, x_max = 0.0, max(xs)

    def x(v: float) -> float:
        return left + (v - x_min) / (x_max - x_min or 1) * (right - left)

    def y(share: float) -> float:
        return bottom - share * (bottom - top)

    parts = []
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{INK}">{int(tick * 100)} %</text>'
        )
    for tick in range(0, int(x_max) + 1, 5):
        parts.append(f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" fill="{INK}">{tick}</text>')
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="{INK}">'
        f"{escape(_('distance à une AMAP (km)'))}</text>"
    )
    if curve:
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(p['radius_km']):.1f},{y(p['share']):.1f}" for i, p in enumerate(curve)
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{BAR}" stroke-width="2.5"/>')
        for p in curve:
            parts.append(
                f'<circle cx="{x(p["radius_km"]):.1f}" cy="{y(p["share"]):.1f}" r="2.5" fill="{BAR}">'
                f"<title>{escape(_fr(p['radius_km']))} km : {escape(_fr(p['share'] * 100, 1))} %</title></circle>"
            )
    if x_min <= radius_km <= x_max:
        parts.append(
            f'<line x1="{x(radius_km):.1f}" x2="{x(radius_km):.1f}" y1="{top}" y2="{bottom}" '
            f'stroke="{ACCENT}" stroke-dasharray="4 3"/>'
            f'<text x="{x(radius_km) + 4:.1f}" y="{top + 12}" fill="{ACCENT}">{escape(_fr(radius_km, 1))} km</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="{INK}"/>')
    return _svg(chart_id="chart-curve", title=title, description=description, body="".join(parts))


def horizontal_bars_svg(*, bars: list[tuple[str, float]], chart_id: str, title: str, description: str) -> str:
    """One bar per label (e.g. AMAPs per département), longest scale first as given."""
    row = 22
    height = MARGIN["top"] + row * max(len(bars), 1) + 24
    label_width = 170
    left, right = label_width, WIDTH - 60
    top = MARGIN["top"]
    peak = _nice_max(max((v for _l, v in bars), default=0))
    parts = []
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        width = value / peak * (right - left) if peak else 0
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" fill="{INK}">{escape(label[:28])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="{BAR}">'
            f"<title>{escape(label)} : {escape(_fr(value))}</title></rect>"
            f'<text x="{left + width + 4:.1f}" y="{y + 15}" fill="{INK}">{escape(_fr(value))}</text>'
        )
    if not bars:
        parts.append(f'<text x="{WIDTH / 2}" y="{top + 16}" text-anchor="middle" fill="{INK}">—</text>')
    return _svg(chart_id=chart_id, title=title, description=description, body="".join(parts), height=height)


def years_svg(*, years: list[dict], title: str, description: str) -> str:
    """AMAPs created each year (bars) and AMAPs open at the end of the year (line)."""
    left, right, top, bottom = MARGIN["left"], WIDTH - MARGIN["right"], MARGIN["top"], HEIGHT - MARGIN["bottom"]
    parts = []
    if not years:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{INK}">—</text>')
        return _svg(chart_id="chart-years", title=title, description=description, body="".join(parts))
    created_peak = _nice_max(max(y["created"] for y in years))
    active_peak = _nice_max(max(y["active"] for y in years))
    slot = (right - left) / len(years)

    def y_created(v: float) -> float:
        return bottom - v / created_peak * (bottom - top)

    def y_active(v: float) -> float:
        return bottom - v / active_peak * (bottom - top)

    for tick in (0, 0.5, 1.0):
        y = bottom - tick * (bottom - top)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{BAR}">{_fr(created_peak * tick)}</text>'
        )
        parts.append(
            f'<text x="{right + 2}" y="{y + 4:.1f}" text-anchor="start" fill="{ACCENT}" font-size="10">'
            f"{_fr(active_peak * tick)}</text>"
        )
    step = max(1, len(years) // 8)
    for i, year in enumerate(years):
        x = left + i * slot
        h = bottom - y_created(year["created"])
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{y_created(year["created"]):.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>'
            + escape(
                _("%(year)s : %(created)s créée(s), %(active)s ouverte(s)")
                % {"year": year["year"], "created": year["created"], "active": year["active"]}
            )
            + "</title></rect>"
        )
        if i % step == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{INK}">'
                f"{year['year']}</text>"
            )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{left + (i + 0.5) * slot:.1f},{y_active(year['active']):.1f}"
        for i, year in enumerate(years)
    )
    parts.append(f'<path d="{path}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    parts.append(
        f'<text x="{left}" y="{HEIGHT - 8}" fill="{BAR}">{escape(_("■ AMAP créées dans l’année"))}</text>'
        f'<text x="{left + 220}" y="{HEIGHT - 8}" fill="{ACCENT}">{escape(_("— AMAP ouvertes au 31 décembre"))}</text>'
    )
    return _svg(chart_id="chart-years", title=title, description=description, body="".join(parts))
