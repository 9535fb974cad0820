"""The report's HTML: one self-contained page, safe against hostile post text.

Nothing from the data is written into the markup: it travels as JSON inside a
``<script type="application/json">`` element (:func:`script_json` escapes what could
close it), and the page's own script (``assets/report.js``, with Plotly inlined) draws it
with text nodes only. A Content-Security-Policy allows exactly those two scripts by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources
from typing import Any

from narratives.errors import OutputError


def script_json(value: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element: no ``<``, ``>`` or ``&``
    (so no ``</script>`` or ``<!--``), and no raw U+2028/U+2029; ``JSON.parse`` reads
    the escapes back to the same text."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _asset(name: str) -> str:
    return resources.files("narratives.report").joinpath("assets", name).read_text("utf-8")


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:  # pragma: no cover - plotly is a dependency
        raise OutputError("the report needs plotly: pip install plotly") from exc
    return get_plotlyjs()


def _sha256(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(data: dict[str, Any], *, csp: bool = True) -> str:
    """The HTML page for ``report_data``'s output. Nothing from the data is written into
    the markup: it all goes through :func:`script_json`."""
    plotly = _plotly_js()
    app = _asset("report.js")
    policy = (
        "default-src 'none'; "
        f"script-src {_sha256(plotly)} {_sha256(app)}; "
        "style-src 'unsafe-inline'; img-src data:; font-src data:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n' if csp else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"{meta}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        "<title>narratives report</title>\n"
        f"<style>\n{_asset('report.css')}</style>\n"
        "</head>\n<body>\n"
        '<main id="report"><p id="loading">Drawing the report…</p></main>\n'
        f'<script type="application/json" id="report-data">{script_json(data)}</script>\n'
        f"<script>{plotly}</script>\n"
        f"<script>{app}</script>\n"
        "</body>\n</html>\n"
    )


__all__ = ["render", "script_json"]
