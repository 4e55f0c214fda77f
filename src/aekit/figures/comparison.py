"""The comparison table of :mod:`aekit.analyses.compare` as text, CSV, Markdown and an HTML page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from aekit.evaluation.glossary import describe
from aekit.figures.canvas import figure, save_figure
from aekit.figures.report import escape, format_value, page

# Columns of the comparison that are not metrics of a single run.
EXTRA = {
    "k": ("dimensions", "code size: the width of the codes (PCA: the number of components)"),
    "score": ("", "the anomaly score behind auroc: the model's best-founded one (aekit score --score auto)"),
}

# Where a lower value is better (the page marks the best run of each column).
LOWER_IS_BETTER = {"mse", "neg_elbo", "nll_iw", "fid", "kid", "train_seconds", "parameters"}
HIGHER_IS_BETTER = {"psnr", "probe_accuracy", "knn_accuracy", "auroc", "average_precision", "samples_per_s"}


def _cells(comparison: Any) -> tuple[list[str], list[list[Any]]]:
    head = ["name", "model", "k", *comparison.columns()]
    return head, [[row.get(c) for c in head] for row in comparison.rows]


def to_csv(comparison: Any) -> str:
    head, rows = _cells(comparison)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue()


def to_markdown(comparison: Any) -> str:
    head, rows = _cells(comparison)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    notes = [f"{comparison.n:,} samples of the {comparison.split} split of {comparison.data}.", *comparison.notes]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def to_text(comparison: Any) -> str:
    head, rows = _cells(comparison)
    shown = [[format_value(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in shown)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in shown)])


def best_rows(comparison: Any) -> dict[str, int]:
    """For each column with a direction, the index of the row with the best value."""
    best = {}
    for c in comparison.columns():
        values = [(i, r.get(c)) for i, r in enumerate(comparison.rows) if isinstance(r.get(c), (int, float))]
        if len(values) < 2 or c not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
            continue
        pick = min if c in LOWER_IS_BETTER else max
        best[c] = pick(values, key=lambda iv: iv[1])[0]
    return best


# The columns drawn as bars, in this order: quality first, then cost.
PLOTTED = ("mse", "psnr", "nll_iw", "neg_elbo", "probe_accuracy", "knn_accuracy", "fid", "auroc", "samples_per_s",
           "parameters")  # fmt: skip


def plot_comparison(comparison: Any, path: str | Path) -> Path | None:
    """One horizontal bar chart per metric column (up to eight), runs in table order; None when no
    column holds numbers."""
    columns = [c for c in PLOTTED if c in comparison.columns()][:8]
    if not columns:
        return None
    names = [r["name"] for r in comparison.rows]
    cols = min(4, len(columns))
    rows = -(-len(columns) // cols)
    fig = figure(3.4 * cols, 0.35 * len(names) * rows + 1.2 * rows + 0.6, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    ypos = np.arange(len(names))
    for ax, c in zip(axes, columns, strict=False):
        values = [r.get(c) for r in comparison.rows]
        shown = [v if isinstance(v, (int, float)) else np.nan for v in values]
        colours = ["tab:gray" if r["model"] == "pca" else "tab:blue" for r in comparison.rows]
        ax.barh(ypos, np.nan_to_num(shown, nan=0.0), color=colours)
        for y, v in zip(ypos, values, strict=True):
            if not isinstance(v, (int, float)):
                ax.text(0, y, " n/a", va="center", fontsize=7, color="0.5")
        ax.set_yticks(ypos, names, fontsize=7)
        ax.invert_yaxis()
        unit, _ = describe(c) or ("", "")
        better = "lower is better" if c in LOWER_IS_BETTER else "higher is better"
        ax.set(title=f"{c} ({better})", xlabel=unit or c, ylabel="run")
        ax.title.set_fontsize(9)
        if c == "parameters":
            ax.set_xscale("log")
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    fig.suptitle(f"{comparison.data}, {comparison.split} split: runs (blue) and PCA baselines (grey)")
    return save_figure(fig, path)


def comparison_page(comparison: Any, *, command: str | None = None, figure_name: str | None = None) -> str:
    """A self-contained HTML page: the table (best value of each column in bold), what each column
    means with its unit, the notes, and the command that made it."""
    head, rows = _cells(comparison)
    best = best_rows(comparison)
    table = [
        '<div style="overflow-x: auto">',
        "<table>",
        "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead>",
        "<tbody>",
    ]
    for i, row in enumerate(rows):
        cells = []
        for c, v in zip(head, row, strict=True):
            text = escape(format_value(v))
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cls = ' style="white-space: nowrap"' if c == "name" else cls
            cells.append(f"<td{cls}>{f'<b>{text}</b>' if best.get(c) == i else text}</td>")
        table.append("<tr>" + "".join(cells) + "</tr>")
    table += ["</tbody>", "</table>", "</div>"]
    legend = ["<table>", "<tr><th>column</th><th>unit</th><th>meaning</th></tr>"]
    for c in ("k", *comparison.columns()):
        unit, meaning = describe(c) or EXTRA.get(c, ("", ""))
        legend.append(f"<tr><th>{escape(c)}</th><td>{escape(unit)}</td><td>{escape(meaning)}</td></tr>")
    legend.append("</table>")
    body = [
        "<h2>Results</h2>",
        "\n".join(table),
        *([f'<img src="{escape(figure_name)}" alt="the table as bar charts">'] if figure_name else []),
        "<p>Bold: the best value of each column that has two or more (lower for errors, distances and cost; "
        "higher for the rest).</p>",
        "<h2>Columns</h2>",
        "\n".join(legend),
        "<h2>Notes</h2>",
        "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in comparison.notes) + "</ul>",
    ]
    if command:
        body += ["<h2>Command</h2>", f"<pre>{escape(command)}</pre>"]
    subtitle = f"{comparison.n:,} samples of the {comparison.split} split of {comparison.data}"
    return page(f"Comparison of {sum(r['model'] != 'pca' for r in comparison.rows)} runs", body, subtitle=subtitle)
