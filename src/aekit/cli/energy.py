"""``aekit energy``: per-sample free energies of a latent EBM, and its energy pictures."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.analyses.energy import write_energies
from aekit.cli.common import add_run_and_data, check_out, split_data
from aekit.runs.run import load_run

RENAMED = {"--beta": "'--beta' is now '--inverse-temperature' for energy (beta is the KL weight of a VAE)."}


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "energy", help="Latent EBM: per-sample free energies (F_inf, and F_beta with --inverse-temperature) and plots."
    )
    p.set_defaults(_parser=p, handler=cmd_energy)
    p.renamed_flags = RENAMED  # type: ignore[attr-defined]
    add_run_and_data(p)
    p.add_argument("--inverse-temperature", type=float, metavar="BETA",
                   help="also compute F_beta = -(1/beta) log mean_z exp(-beta E(y, z))")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the random restarts and latent samples")
    p.add_argument("--out", required=True, help="energies.csv; plots go beside it for 2-D data")


def cmd_energy(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    out = check_out(args.out, (".csv",))
    x, _ = split_data(run, args)
    columns, figures = write_energies(run, x, out, inverse_temperature=args.inverse_temperature, seed=args.seed)
    print(f"Wrote {len(x)} free energies to {out} (mean F_inf {float(columns['f_inf'].mean()):.4g})")
    for figure in figures:
        print(f"Wrote {figure}")
    return 0
