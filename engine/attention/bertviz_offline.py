"""bertviz's head and model views as self-contained HTML: no network, and typed text stays text.

bertviz's HTML loads require.js, d3 and jQuery from a CDN, so offline it renders blank. Here
jQuery and d3 are inlined from the XStatic-jQuery and XStatic-D3 PyPI packages. require.js is
replaced by a two-line stand-in: bertviz only uses it to hand over those two libraries, and the
only require.js on PyPI (XStatic-RequireJS 2.1.15) no longer builds with current setuptools.

bertviz writes its parameters, tokens included, as raw JSON inside a <script> (twice: once more
in a comment); a token such as "</script><script>…" would end that script and run. The JSON is
rewritten with <, > and & as \\u003c-style escapes, which JavaScript reads back as the same
characters, and the comment is dropped; bertviz then draws tokens with d3's .text(), so they
show as text.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import torch
import xstatic.pkg.d3
import xstatic.pkg.jquery
from bertviz import head_view, model_view

_LOADER = """
// bertviz asks require.js for 'jquery' and 'd3': hand over the copies inlined above.
window.requirejs = function (names, done) {
  done.apply(null, names.map(function (n) { return {jquery: window.jQuery, d3: window.d3}[n]; }));
};
// The model view reads d3.schemeCategory10 (d3 4+); d3 3.5 has the same ten colours here.
d3.schemeCategory10 = d3.schemeCategory10 || d3.scale.category10().range();
"""
_CDN_SCRIPT = re.compile(r'<script src="https?://[^"]*"></script>')
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.S)
_PARAMS = "const params = "


def head_view_html(attn: torch.Tensor, tokens: list[str], layer: int | None = None,
                   heads: list[int] | None = None) -> str:
    """bertviz head view of a (layers, heads, T, T) attention tensor, as one HTML document.
    Tokens are shown exactly as given."""
    html = head_view(_per_layer(attn), list(tokens), prettify_tokens=False, layer=layer, heads=heads,
                     html_action="return").data
    return _offline(html)


def model_view_html(attn: torch.Tensor, tokens: list[str], display_mode: str = "light",
                    include_layers: list[int] | None = None, include_heads: list[int] | None = None) -> str:
    """bertviz model view (a thumbnail per layer and head), as one HTML document."""
    html = model_view(_per_layer(attn), list(tokens), prettify_tokens=False, display_mode=display_mode,
                      include_layers=include_layers, include_heads=include_heads, html_action="return").data
    return _offline(html)


def _per_layer(attn: torch.Tensor) -> list[torch.Tensor]:
    # bertviz wants one (1, heads, T, T) tensor per layer. Three decimals in float64 print as
    # "0.123", not float32's "0.12300000339746475": the HTML is several times smaller.
    return list(attn.detach().double().round(decimals=3).unsqueeze(1))


def _offline(html: str) -> str:
    html = _safe_params(_REQUIRE_CONFIG.sub("", html, count=1))
    html, n = _CDN_SCRIPT.subn(lambda _: _libraries(), html, count=1)
    if n != 1:
        raise RuntimeError("bertviz's HTML changed: no CDN script tag to replace.")
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{html}\n</body></html>'


def _safe_params(html: str) -> str:
    start = html.index(_PARAMS) + len(_PARAMS)
    params, end = json.JSONDecoder().raw_decode(html, start)
    safe = json.dumps(params, separators=(",", ":"))
    safe = safe.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # The rest of that line is a comment into which bertviz pasted the raw JSON a second time.
    return html[:start] + safe + ";" + html[html.index("\n", end):]


@functools.cache
def _libraries() -> str:
    jquery = Path(xstatic.pkg.jquery.BASE_DIR, "jquery.min.js").read_text(encoding="utf-8")
    d3 = Path(xstatic.pkg.d3.BASE_DIR, "d3.js").read_text(encoding="utf-8")
    return "".join(f"<script>\n{js}\n</script>\n" for js in (jquery, d3, _LOADER))
