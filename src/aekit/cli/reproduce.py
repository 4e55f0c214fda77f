"""``aekit reproduce``: rerun a paper's experiment and write its table beside the paper's numbers."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.errors import ConfigError
from aekit.reproduce import REPRODUCTIONS, TIERS, markdown, reproduce


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce", help="Rerun a paper's experiment; write its table (Markdown, JSON) next to the paper's numbers."
    )
    p.set_defaults(_parser=p, handler=cmd_reproduce)
    p.add_argument("name", nargs="?", help=f"one of {', '.join(REPRODUCTIONS)}")
    p.add_argument("--list", action="store_true", help="name every reproduction, its paper and its tiers")
    p.add_argument("--tier", default="smoke",
                   help="smoke: the whole path in about a minute; full: the budget docs/reproductions.md "
                        "reports (hours on a CPU); default: smoke")  # fmt: skip
    p.add_argument("--out", default="reproductions",
                   help="folder of the runs and tables: OUT/NAME/TIER/ (default: reproductions)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many of the reproduction's runs at once, each in its own process on an "
                        "equal share of the CPU's threads (each time then counts a share of the machine); "
                        "default: 1")  # fmt: skip
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.list:
        for name, r in REPRODUCTIONS.items():
            print(f"{name:<16} {r.paper}: {r.summary}")
        return 0
    if args.name is None:
        raise ConfigError(f"Name a reproduction: one of {', '.join(REPRODUCTIONS)} (or --list).")
    if args.tier not in TIERS:
        raise ConfigError(f"Unknown tier '{args.tier}'. Choose one of: {', '.join(TIERS)}.")
    table = reproduce(args.name, tier=args.tier, out=args.out, progress=args.progress, jobs=args.jobs)
    print(markdown(table), end="")
    print(f"Wrote {args.out}/{args.name}/{args.tier}/table.md and table.json")
    return 0
