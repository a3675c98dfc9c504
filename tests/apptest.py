"""AppTest helpers every page test uses: open a page (optionally from a link), poll a live view,
collect the text a person would read."""
import json
import re
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import AlertBase, HeadingBase, Markdown

ROOT = Path(__file__).resolve().parent.parent


def open_page(script: str, params: dict | None = None, timeout: float = 60) -> AppTest:
    """Run `script` (e.g. "app_pages/sft.py"), as opened by a link carrying `params`."""
    at = AppTest.from_file(str(ROOT / script), default_timeout=timeout)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return " ".join(x.value for kind in ("markdown", "caption", "success", "warning", "error", "info")
                    for x in getattr(at, kind))


def poll(at: AppTest, done, timeout: float = 90) -> None:
    """`run_every` never fires in AppTest: rerun until `done(at)` or the deadline."""
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(0.3)
    raise AssertionError("timed out; page shows: " + texts(at)[:2000])


def chart(at: AppTest, key: str) -> dict:
    """The plotly spec of the chart whose element id contains `key`."""
    return json.loads(next(c for c in at.get("plotly_chart") if key in c.proto.id).proto.spec)


def notices(at: AppTest) -> list[str]:
    """The "What to notice" sentences under the charts and tables."""
    return [c.value for c in at.caption if "What to notice" in c.value]


def every_chart_has_its_sentence(at: AppTest) -> bool:
    """The page draws charts, and each is followed at once by its "What to notice" sentence."""
    nodes = list(at._tree)
    charts = [i for i, n in enumerate(nodes) if n.type == "plotly_chart"]
    return bool(charts) and all(i + 1 < len(nodes) and "What to notice" in str(getattr(nodes[i + 1], "value", ""))
                                for i in charts)


def order(at: AppTest) -> list[str]:
    """What the page shows, top to bottom: charts, tables, widget keys and markdown."""
    out = []
    for node in at._tree:
        if node.type == "plotly_chart":
            out.append(f"chart:{node.proto.id}")
        elif getattr(node, "key", None):
            out.append(f"key:{node.key}")
        elif node.type == "dataframe":
            out.append("table")
        elif isinstance(node, Markdown):
            out.append(f"md:{node.value}")
    return out


def visible(at: AppTest) -> str:
    """What a person reads without opening a help tooltip: text, labels, and every chart's title, axis
    titles and trace names (help texts may name a metric as TRL logs it, and code blocks are code)."""
    parts = []
    for node in at._tree:
        if isinstance(node, (Markdown, AlertBase, HeadingBase)):
            parts.append(re.sub(r"`[^`]*`", "", node.value))
        if isinstance(getattr(node, "label", None), str):
            parts.append(node.label)
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        layout = spec.get("layout", {})
        titles = [layout.get("title", {}), *(v.get("title", {}) for k, v in layout.items() if "axis" in k)]
        parts += [t.get("text", "") if isinstance(t, dict) else str(t) for t in titles]
        parts += [str(trace.get("name", "")) for trace in spec.get("data", [])]
    return " ".join(parts)


def advanced_keys(at: AppTest, prefix: str) -> tuple[set[str], set[str]]:
    """The widget keys starting with `prefix` inside the page's "Advanced" expander, and those in view."""
    advanced = next(e for e in at.expander if "Advanced" in e.label)
    inside = {n.key for n in advanced if getattr(n, "key", None)}
    shown = {n.key for n in at._tree if getattr(n, "key", None) and n.key.startswith(prefix)}
    return {k for k in inside if k.startswith(prefix)}, shown - inside
