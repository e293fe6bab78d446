"""The dashboard's server-rendered bar charts."""
from portal.services.charts import WIDTH, bar_chart


def test_every_label_fits_inside_the_chart():
    labels = [f"11-{day:02d}" for day in range(1, 31)]
    chart = bar_chart(labels, list(range(30)), label_every=7)
    shown = [b for b in chart["bars"] if b["show_label"]]
    assert shown[-1]["label"] == "11-30"  # the newest day is always labelled
    last = chart["bars"][-1]
    assert last["anchor"] == "end" and last["tx"] <= WIDTH  # drawn leftwards from the edge, not centred on it
    assert all(b["anchor"] == "middle" for b in chart["bars"][:-1])
    assert chart["total"] == sum(range(30)) and chart["max"] == 29
