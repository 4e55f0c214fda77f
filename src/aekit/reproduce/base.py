"""What every reproduction shares: its description, its tiers, the runs it trains or reuses (one after
another, or ``jobs`` at a time in worker processes), and the table it writes (Markdown and JSON, the
measured numbers beside the paper's)."""

from __future__ import annotations

import multiprocessing
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aekit.errors import ConfigError, check_choice
from aekit.fsutil import atomic_write_text
from aekit.runs.layout import CHECKPOINT, SUMMARY, dumps, read_json
from aekit.runs.run import Run, load_run, resume, train
from aekit.training.callbacks import Callback
from aekit.training.checkpoint import load_state_into, load_tensors, save_tensors

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


# The runs a tier trains: {folder name: aekit.train options}, and "weights_at": minutes at which to keep
# the weights (see WeightsAt).
Plan = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Reproduction:
    """A paper's experiment. ``tiers`` holds each tier's settings (``smoke``: minutes on a CPU, for the
    test suite; ``full``: the budget docs/reproductions.md reports). ``runs(settings)`` names the runs
    to train, independent of each other; ``table(settings, runs, folder, progress)`` gets them trained
    (a :class:`Run` per name, under ``folder``) and returns the table's rows."""

    name: str
    paper: str
    summary: str
    tiers: Mapping[str, Mapping[str, Any]]
    runs: Callable[[Mapping[str, Any]], Plan]
    table: Callable[[Mapping[str, Any], dict[str, Run], Path, bool], list[Row]]
    notes: str = ""
    commands: tuple[str, ...] = field(default=())


def train_or_reuse(folder: Path, progress: bool, **options: Any) -> Run:
    """The run in ``folder`` trained with ``options``: reused when finished with the same options,
    resumed when it holds a checkpoint, else trained, so an interrupted reproduction goes on.
    ``weights_at`` (minutes) keeps the weights at those marks of training time (:class:`WeightsAt`)."""
    marks = options.pop("weights_at", ())
    callbacks = [WeightsAt(folder, marks)] if marks else None
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
        return resume(folder, progress=progress, report=options["report"], callbacks=callbacks)
    return train(out=folder, callbacks=callbacks, **options)


def train_all(plan: Plan, folder: Path, progress: bool, jobs: int = 1) -> dict[str, Run]:
    """Train (or reuse) every run of ``plan`` under ``folder``. With ``jobs`` > 1, that many at a time,
    each in its own process with an equal share of the CPU's threads (their progress bars off: each
    says when it starts and ends); their times then count one share of the machine each."""
    if jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs}.")
    if jobs > 1 and len(plan) > 1:
        threads = max(1, torch.get_num_threads() // jobs)
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
        with ProcessPoolExecutor(min(jobs, len(plan)), mp_context=context) as pool:
            me = os.getpid()
            futures = [
                pool.submit(_train_in_worker, folder / name, threads, dict(opts), me) for name, opts in plan.items()
            ]
            for future in futures:
                future.result()  # a worker's error is raised here
    return {name: train_or_reuse(folder / name, progress, **options) for name, options in plan.items()}


def _train_in_worker(folder: Path, threads: int, options: dict[str, Any], parent: int) -> None:
    exit_with_parent(parent)
    torch.set_num_threads(threads)
    print(f"training {folder} ({threads} thread{'s' if threads > 1 else ''})", file=sys.stderr, flush=True)
    run = train_or_reuse(folder, False, **options)
    print(f"trained {folder} in {train_seconds(run):.0f} s", file=sys.stderr, flush=True)


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this process when ``parent`` is gone. A worker whose ``aekit reproduce`` was killed (not
    interrupted: Ctrl-C reaches the workers too) would go on training, a second writer beside the
    run the next ``aekit reproduce`` resumes. Its run keeps the checkpoint of its last epoch."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)  # files are written atomically: ending between two writes loses nothing

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class WeightsAt(Callback):
    """Keeps a run's weights at marks of training time: after the first epoch that ends at or past
    ``m`` minutes, ``folder/at-{m}min.safetensors`` (with the epoch and the minutes it was taken at), so
    one run gives the quality reached by each mark. A resumed run keeps the marks already taken."""

    def __init__(self, folder: Path, minutes: tuple[float, ...]):
        self.folder, self.minutes = Path(folder), tuple(minutes)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any], improved: bool) -> None:
        spent = trainer.state.train_seconds / 60
        for mark in self.minutes:
            path = weights_at(self.folder, mark)
            if spent >= mark and not path.is_file():
                meta = {"epoch": trainer.state.epoch, "minutes": round(spent, 2)}
                save_tensors(path, trainer.model.state_dict(), meta)


def weights_at(folder: Path, minutes: float) -> Path:
    return Path(folder) / f"at-{minutes:g}min.safetensors"


def run_at(folder: Path, minutes: float | None) -> tuple[Run, dict[str, Any]]:
    """The run in ``folder`` with the weights :class:`WeightsAt` kept at ``minutes``, and when they
    were taken (``epoch``, ``minutes``); ``None``, or a mark the run ended before, gives the run as it
    finished."""
    run = load_run(folder)
    path = None if minutes is None else weights_at(folder, minutes)
    if path is None or not path.is_file():
        summary = read_json(folder, SUMMARY)
        return run, {"epoch": summary["epochs"], "minutes": round(summary["train_seconds"] / 60, 2)}
    tensors, meta = load_tensors(path)
    load_state_into(run.model, tensors, path)
    return run, meta


def epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def train_seconds(run: Run) -> float:
    """The training time its summary.json records."""
    return float(read_json(run.path, SUMMARY)["train_seconds"])


def cpu_name() -> str:
    """The processor's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."): two 2-core machines can differ
    twofold in speed, so a table names the one it was measured on. Linux keeps the name in /proc/cpuinfo
    (``platform.processor()`` gives only the architecture there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "cpu": cpu_name(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_reproduction(reproduction: Reproduction, tier: str, out: Path, progress: bool, jobs: int = 1) -> dict[str, Any]:
    """Run one tier of ``reproduction`` into ``out/NAME`` and write its table; returns the table."""
    check_choice("tier", tier, TIERS)
    folder = Path(out) / reproduction.name / tier
    settings = reproduction.tiers[tier]
    start = time.perf_counter()
    runs = train_all(reproduction.runs(settings), folder, progress, jobs)
    rows = reproduction.table(settings, runs, folder, progress)
    table = {
        "name": reproduction.name,
        "paper": reproduction.paper,
        "summary": reproduction.summary,
        "tier": tier,
        "settings": dict(settings),
        "jobs": jobs,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine(),
        "rows": [vars(r) for r in rows],
        "notes": reproduction.notes,
    }
    atomic_write_text(folder / TABLE_JSON, dumps(table, indent=2))
    atomic_write_text(folder / TABLE_MD, markdown(table))
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
    jobs = table.get("jobs", 1)
    shared = f"; {jobs} runs trained at a time, each on its share of the cores" if jobs > 1 else ""
    lines += [
        "",
        f"Measured in {table['seconds']:.0f} s on {m['cores']} cores ({m['cpu']}), "
        f"{'GPU ' + m['cuda'] if m['cuda'] else 'no GPU'}, torch {m['torch']}{shared}.",
    ]
    if table["notes"]:
        lines += ["", table["notes"]]
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


__all__ = [
    "TIERS",
    "Plan",
    "Reproduction",
    "Row",
    "WeightsAt",
    "epochs",
    "machine",
    "markdown",
    "run_at",
    "run_reproduction",
    "train_all",
    "train_or_reuse",
    "train_seconds",
    "weights_at",
]
