"""Small inline SVG charts drawn on the server: no JavaScript, nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

COLORS = {
    "confirmed": "#2e7d32",
    "benign": "#81c784",
    "compromised": "#c62828",
    "suppressed": "#9e9e9e",
    "open": "#f9a825",
    "bar": "#1565c0",
    "bar2": "#c62828",
}


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#333">{escape(text)}</text>'
    )


def stacked_days(
    days: Sequence[date], per_day: dict[date, dict[str, int]], series: Sequence[str]
) -> Markup:
    """One stacked column per day, one colour per outcome, with a legend underneath."""
    width, height, left, top, bottom = 640, 220, 34, 10, 48
    plot_h = height - top - bottom
    peak = max((sum(per_day.get(d, {}).values()) for d in days), default=0) or 1
    step = (width - left - 10) / max(len(days), 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        _text(left - 4, top + 8, str(peak), "end"),
        _text(left - 4, top + plot_h, "0", "end"),
    ]
    for i, d in enumerate(days):
        counts = per_day.get(d, {})
        y = float(top + plot_h)
        x = left + i * step + step * 0.15
        for name in series:
            n = counts.get(name, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{COLORS.get(name, "#555")}"><title>{escape(f"{d}: {n} {name}")}'
                "</title></rect>"
            )
        if i % max(1, len(days) // 7) == 0:
            body.append(_text(x + step * 0.35, top + plot_h + 14, d.strftime("%m-%d"), "middle"))
    lx = left
    for name in series:
        body.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="10" '
            f'fill="{COLORS.get(name, "#555")}"/>'
        )
        body.append(_text(lx + 14, height - 7, name))
        lx += 16 + 8 * len(name) + 10
    return _svg(width, height, body, "alerts per day by outcome")


def hbars(
    rows: Sequence[tuple[str, Sequence[float]]],
    legend: Sequence[str],
    label: str,
    fmt: str = "{:g}",
) -> Markup:
    """Horizontal bars: one row per label, one bar per value (side by side)."""
    per_row = max((len(v) for _, v in rows), default=1)
    bar_h, gap, left, width = 14, 10, 150, 640
    height = max(1, len(rows)) * (per_row * bar_h + gap) + 24
    peak = max((x for _, vals in rows for x in vals), default=0) or 1
    colors = [COLORS["bar"], COLORS["bar2"]]
    body: list[str] = []
    y = 4.0
    for name, values in rows:
        body.append(_text(left - 6, y + per_row * bar_h / 2 + 4, name[:24], "end"))
        for j, value in enumerate(values):
            w = (width - left - 60) * value / peak
            body.append(
                f'<rect x="{left}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{bar_h - 2}" '
                f'fill="{colors[j % 2]}"><title>{escape(f"{name}: {fmt.format(value)}")}</title>'
                "</rect>"
            )
            body.append(_text(left + w + 4, y + bar_h - 4, fmt.format(value)))
            y += bar_h
        y += gap
    if not rows:
        body.append(_text(left, 16, "no data in this period"))
    lx = left
    for j, name in enumerate(legend if per_row > 1 else []):
        body.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colors[j % 2]}"/>'
        )
        body.append(_text(lx + 14, height - 5, name))
        lx += 30 + 7 * len(name)
    return _svg(width, int(height), body, label)
