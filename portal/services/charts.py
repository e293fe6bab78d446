"""Server-rendered SVG bar charts: geometry computed here, drawn by ``templates/macros/charts.html``.

No JavaScript chart library and no inline styles (colours come from CSS classes), so the strict CSP holds.
"""
from __future__ import annotations

import math

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 8, 10, 28


def nice_max(value: int) -> int:
    """A round upper bound for the axis: 1, 2, 5, 10, 20, 50…"""
    if value <= 0:
        return 1
    exponent = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def bar_chart(labels: list[str], values: list[int], *, label_every: int = 7) -> dict:
    top = nice_max(max(values) if values else 0)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = max(1, len(values))
    slot = inner_w / n
    bar_w = max(1.0, slot * 0.7)
    bars = []
    for index, (label, value) in enumerate(zip(labels, values)):
        h = 0 if top == 0 else inner_h * value / top
        x = PAD_LEFT + index * slot + (slot - bar_w) / 2
        bars.append({"x": round(x, 1), "y": round(PAD_TOP + inner_h - h, 1), "w": round(bar_w, 1),
                     "h": round(h, 1), "label": label, "value": value,
                     "show_label": (len(values) - 1 - index) % label_every == 0,
                     "tx": round(x + bar_w / 2, 1), "anchor": "middle"})
    if bars:  # the newest day's label ends at the chart's edge instead of being cut off by it
        bars[-1].update(tx=WIDTH - 1, anchor="end")
    fractions = (0, 0.5, 1) if top % 2 == 0 else (0, 1)  # whole-number ticks only
    ticks = [{"value": int(top * f), "y": round(PAD_TOP + inner_h - inner_h * f, 1)} for f in fractions]
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "ticks": ticks, "left": PAD_LEFT,
            "right": WIDTH - PAD_RIGHT, "baseline": PAD_TOP + inner_h, "label_y": HEIGHT - 8,
            "total": sum(values), "max": max(values) if values else 0}
