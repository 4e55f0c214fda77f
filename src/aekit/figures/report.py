"""A run's report: one self-contained static HTML page (inline CSS, no scripts, no external assets).

The pieces are public so that other pages (the comparison of runs) look the same: :func:`escape`,
:func:`format_value`, :func:`fact_table` (key, value), :func:`metric_table` (name, value, unit,
meaning from :mod:`aekit.evaluation.glossary`), :func:`image_block`, :func:`yaml_block` and
:func:`page` (the shell with the stylesheet, :data:`CSS`).
"""

from __future__ import annotations

import html
import math
import numbers
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from aekit.evaluation.glossary import current_names, describe
from aekit.fsutil import atomic_write_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  max-width: 1000px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; }
img.pixelated { image-rendering: pixelated; }
td.unit { color: #555; white-space: nowrap; }
td.meaning { color: #555; font-size: 0.9rem; }
pre { background: #f7f7f7; border: 1px solid #e5e5e5; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
"""

_SMALL_IMAGE = 320  # pixels: smaller PNGs are shown enlarged, with sharp pixels


def escape(text: object) -> str:
    """``text`` as HTML-safe text (quotes included, so that it may stand in an attribute)."""
    return html.escape(str(text), quote=True)


def format_value(value: object) -> str:
    """Format a value for a table: floats with 4 significant digits, thousands separated by commas."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isfinite(v) and 1e3 <= abs(v) < 1e15:  # 4 or more digits before the point
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG header, or None when the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def image_block(run_dir: str | os.PathLike, heading: str, relative: str) -> str | None:
    """A heading and the PNG ``run_dir/relative`` (tiny images enlarged), or None when the file is missing."""
    run_dir = Path(run_dir)
    file = run_dir / relative
    if not file.is_file():
        return None
    src = html.escape(Path(relative).as_posix(), quote=True)
    attrs = ""
    size = _png_size(file)
    if size:
        w, h = size
        factor = max(1, _SMALL_IMAGE // max(w, h, 1))  # tiny images are enlarged by an integer factor
        attrs = f' width="{w * factor}" height="{h * factor}"'
        attrs += ' class="pixelated"' if factor > 1 else ""
    return f'<h2>{html.escape(heading)}</h2>\n<img src="{src}" alt="{html.escape(heading, quote=True)}"{attrs}>'


def _plain(value: Any) -> Any:
    """Turn a config into plain YAML types (tuples, paths and NumPy scalars would stop ``safe_dump``)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # NumPy or torch scalar
        try:
            return _plain(value.item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _number(value: object) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def fact_table(rows: Mapping[str, object]) -> str:
    """A two-column table: each key beside its formatted value."""
    body = []
    for key, value in rows.items():
        cls = ' class="num"' if _number(value) else ""
        body.append(f"<tr><th>{escape(key)}</th><td{cls}>{escape(format_value(value))}</td></tr>")
    return "<table>\n" + "\n".join(body) + "\n</table>"


def metric_row(name: str, value: object) -> str:
    """One ``<tr>``: the metric's name, value, unit and one-line meaning (blank when the glossary lacks it)."""
    unit, meaning = describe(name) or ("", "")
    cls = ' class="num"' if _number(value) else ""
    return (
        f"<tr><th>{escape(name)}</th><td{cls}>{escape(format_value(value))}</td>"
        f'<td class="unit">{escape(unit)}</td><td class="meaning">{escape(meaning)}</td></tr>'
    )


def metric_table(metrics: Mapping[str, object], *, first: str = "metric") -> str:
    """A table of metrics with their units and meanings; legacy names are shown under today's
    (``bits_per_dim`` -> ``bits_per_dim_elbo``). ``first`` heads the name column."""
    rows = [metric_row(str(k), v) for k, v in current_names(metrics).items()]
    head = f"<tr><th>{escape(first)}</th><th>value</th><th>unit</th><th>meaning</th></tr>"
    return "<table>\n" + head + "\n" + "\n".join(rows) + "\n</table>"


def yaml_block(values: Mapping) -> str:
    """``values`` as YAML in a ``<pre>`` block (tuples, paths and NumPy scalars are made plain first)."""
    text = yaml.safe_dump(_plain(values), sort_keys=False, allow_unicode=True)
    return f"<pre>{escape(text)}</pre>"


def page(title: str, body: Sequence[str], *, subtitle: str | None = None) -> str:
    """A whole HTML document: the stylesheet, ``title`` as heading, an optional subtitle, then ``body``
    (HTML fragments, already escaped)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="sub">{escape(subtitle)}</p>')
    return "\n".join([*parts, *body, "</body>", "</html>", ""])


def write_report(
    run_dir: str | os.PathLike,
    *,
    title: str,
    summary: Mapping[str, object],
    metrics: Mapping[str, float] | None,
    plots: Sequence[tuple[str, str]],
    config: Mapping | None = None,
    command: str | None = None,
    config_note: str | None = None,
) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    Parameters
    ----------
    run_dir : the run directory; image paths are relative to it.
    title : page title.
    summary : facts about the run (model, data, epochs, best epoch, train time...), shown in order,
        each with its unit and meaning when the glossary defines it.
    metrics : test metrics, or None when there are none; each row shows its unit and meaning.
    plots : ``(heading, relative_path)`` pairs; plots whose file is missing are left out.
    config : the configuration to show, as YAML.
    command : the command that made the run; None shows "not recorded" (runs of earlier releases).
    config_note : a sentence shown above the configuration (e.g. what was left out).
    """
    run_dir = Path(run_dir)
    body = ["<h2>Command</h2>", f"<pre>{escape(command)}</pre>" if command else "<p>not recorded</p>"]
    if summary:
        body += ["<h2>Summary</h2>", metric_table(summary, first="fact")]
    if metrics:
        body += ["<h2>Test metrics</h2>", metric_table(metrics)]
    body += [img for heading, rel in plots if (img := image_block(run_dir, heading, rel)) is not None]
    if config is not None:
        body += ["<h2>Configuration</h2>"]
        body += [f'<p class="sub">{escape(config_note)}</p>'] if config_note else []
        body += [yaml_block(config)]
    text = page(title, body, subtitle=f"Run directory: {run_dir.resolve().name}")
    return atomic_write_text(run_dir / "report.html", text)
