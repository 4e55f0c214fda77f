"""Interleaved rounds, shared by the benchmarks: these machines drift by a quarter within minutes, so
every contender runs once per round in a shuffled order, and results are medians over rounds and
paired ratios (each round's value over the same round's baseline, then the median), which cancel the
drift that moves a whole round."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from typing import Any


def interleave(
    contenders: dict[str, Callable[[], Any]], rounds: int, show: Callable[[Any], str], label: str = ""
) -> dict[str, list[Any]]:
    """Run every contender once per round, in a seeded shuffled order; each contender's results in
    round order. After each round a line shows each result as ``show(result)``."""
    results: dict[str, list[Any]] = {name: [] for name in contenders}
    for r in range(rounds):
        order = list(contenders)
        random.Random(r).shuffle(order)
        for name in order:
            results[name].append(contenders[name]())
        line = ", ".join(f"{name} {show(results[name][-1])}" for name in contenders)
        print(f"{label + ' ' if label else ''}round {r + 1}/{rounds}: {line}", flush=True)
    return results


def paired(values: list[float], base: list[float]) -> float:
    """The median over rounds of each round's value over the same round's ``base``."""
    return statistics.median(v / b for v, b in zip(values, base, strict=True))
