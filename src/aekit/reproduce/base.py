"""What every reproduction shares: its description, its tiers, the runs it trains or reuses, and the
table it writes (Markdown and JSON, the measured numbers beside the paper's)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aekit.errors import ConfigError, check_choice
from aekit.fsutil import atomic_write_text
from aekit.runs.layout import CHECKPOINT, SUMMARY, dumps, read_json
from aekit.runs.run import Run, load_run, resume, train

TIERS = ("smoke", "full")
TABLE_MD = "table.md"
TABLE_JSON = "table.json"


@dataclass(frozen=True)
class Row:
    """One number of the table: what was measured, its value here and the paper's (None: not reported)."""

    what: str
    metric: str
    measured: float | None
    paper: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Reproduction:
    """A paper's experiment. ``tiers`` holds each tier's settings (``smoke``: minutes on a CPU, for the
    test suite; ``full``: the budget docs/reproductions.md reports); ``run(settings, folder, progress)``
    trains (or reuses) its runs under ``folder`` and returns the table's rows."""

    name: str
    paper: str
    summary: str
    tiers: Mapping[str, Mapping[str, Any]]
    run: Callable[[Mapping[str, Any], Path, bool], list[Row]]
    notes: str = ""
    commands: tuple[str, ...] = field(default=())


def train_or_reuse(folder: Path, progress: bool, **options: Any) -> Run:
    """The run in ``folder`` trained with ``options``: reused when finished with the same options,
    resumed when it holds a checkpoint, else trained, so an interrupted reproduction goes on."""
    options = {"report": False, **options, "progress": progress}
    if (folder / SUMMARY).is_file():
        run = load_run(folder)
        wanted = run.config.replace(**{k: v for k, v in options.items() if k not in ("report", "progress")})
        if wanted.to_dict() == run.config.to_dict():
            return run
        raise ConfigError(
            f"'{folder}' holds a finished run with other settings than this tier's. Delete it, or choose another --out."
        )
    if (folder / CHECKPOINT).is_file():
        return resume(folder, progress=progress, report=options["report"])
    return train(out=folder, **options)


def epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def train_seconds(run: Run) -> float:
    """The training time its summary.json records."""
    return float(read_json(run.path, SUMMARY)["train_seconds"])


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_reproduction(reproduction: Reproduction, tier: str, out: Path, progress: bool) -> dict[str, Any]:
    """Run one tier of ``reproduction`` into ``out/NAME`` and write its table; returns the table."""
    check_choice("tier", tier, TIERS)
    folder = Path(out) / reproduction.name
    start = time.perf_counter()
    rows = reproduction.run(reproduction.tiers[tier], folder / tier, progress)
    table = {
        "name": reproduction.name,
        "paper": reproduction.paper,
        "summary": reproduction.summary,
        "tier": tier,
        "settings": dict(reproduction.tiers[tier]),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine(),
        "rows": [vars(r) for r in rows],
        "notes": reproduction.notes,
    }
    atomic_write_text(folder / tier / TABLE_JSON, dumps(table, indent=2))
    atomic_write_text(folder / tier / TABLE_MD, markdown(table))
    return table


def markdown(table: Mapping[str, Any]) -> str:
    """The table as Markdown: what, metric, measured, paper."""
    lines = [
        f"# {table['name']} ({table['tier']} tier)",
        "",
        f"{table['paper']}: {table['summary']}",
        "",
        "| what | metric | measured | paper | note |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for row in table["rows"]:
        cells = (row["what"], row["metric"], _number(row["measured"]), _number(row["paper"]), row["note"])
        lines.append("| " + " | ".join(cells) + " |")
    m = table["machine"]
    lines += [
        "",
        f"Measured in {table['seconds']:.0f} s on {m['cores']} cores ({m['cpu']}), "
        f"{'GPU ' + m['cuda'] if m['cuda'] else 'no GPU'}, torch {m['torch']}.",
    ]
    if table["notes"]:
        lines += ["", table["notes"]]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


__all__ = [
    "TIERS",
    "Reproduction",
    "Row",
    "epochs",
    "machine",
    "markdown",
    "run_reproduction",
    "train_or_reuse",
    "train_seconds",
]
