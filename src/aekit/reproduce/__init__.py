"""``aekit reproduce``: the papers' experiments as commands anyone can rerun.

Each reproduction trains its runs (reusing finished ones and resuming interrupted ones) and writes a
table of its numbers beside the paper's, in Markdown and JSON, with the machine and the time it took.
The ``smoke`` tier checks the whole path in about a minute; the ``full`` tier is what
docs/reproductions.md reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aekit.errors import ConfigError, suggest
from aekit.reproduce.base import TIERS, Reproduction, Row, markdown, run_reproduction
from aekit.reproduce.burda2016 import BURDA2016
from aekit.reproduce.higgins2017 import HIGGINS2017
from aekit.reproduce.hinton2006 import HINTON2006
from aekit.reproduce.vandenoord2017 import VANDENOORD2017

REPRODUCTIONS: dict[str, Reproduction] = {r.name: r for r in (HINTON2006, BURDA2016, HIGGINS2017, VANDENOORD2017)}


def get(name: str) -> Reproduction:
    """The reproduction called ``name``; an unknown name is a :class:`ConfigError`."""
    if name not in REPRODUCTIONS:
        raise ConfigError(
            f"Unknown reproduction '{name}'.{suggest(name, REPRODUCTIONS)} Choose one of: {', '.join(REPRODUCTIONS)} "
            "(aekit reproduce --list)."
        )
    return REPRODUCTIONS[name]


def reproduce(
    name: str, tier: str = "smoke", out: str | Path = "reproductions", progress: bool = True, jobs: int = 1
) -> dict[str, Any]:
    """Run ``tier`` of reproduction ``name`` into ``out/NAME/TIER``; returns its table (also written
    there as table.md and table.json). ``jobs``: how many of its runs train at once, each in its own
    process on an equal share of the CPU's threads."""
    return run_reproduction(get(name), tier, Path(out), progress, jobs)


__all__ = ["REPRODUCTIONS", "TIERS", "Reproduction", "Row", "get", "markdown", "reproduce"]
