"""``aekit traverse``, ``interpolate``, ``bubbles`` and ``manifold``: pictures of a run's latent space."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.analyses import latent_space as ls
from aekit.cli.common import check_out, numbers
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("traverse", help="Sweep each latent dimension with the others held at a data point's code.")
    p.add_argument("run_dir")
    p.add_argument("--index", type=int, default=0, help="the data point (position in --split)")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--values",
        default="-3,-2.25,-1.5,-0.75,0,0.75,1.5,2.25,3",
        help="comma-separated values; write --values=-2,0,2 when the first is negative",
    )
    p.add_argument("--dims", help="comma-separated latent dimensions to show (default: all)")
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(_parser=p, handler=cmd_traverse)

    p = sub.add_parser("interpolate", help="Decode the path between the codes of two data points.")
    p.add_argument("run_dir")
    p.add_argument("--a", type=int, required=True, help="first data point (position in --split)")
    p.add_argument("--b", type=int, required=True, help="second data point")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--mode", default="linear", help="linear or slerp")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(_parser=p, handler=cmd_interpolate)

    p = sub.add_parser(
        "bubbles", help="2-D VAE: posterior means with their standard-deviation ellipses (the 'bubbles')."
    )
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=300, help="number of data points")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(_parser=p, handler=cmd_bubbles)

    p = sub.add_parser("manifold", help="2-D latent: decode a regular grid of codes and tile the results.")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=15, help="grid points per axis")
    p.add_argument("--span", type=float, default=3.0, help="the grid covers [-span, span]^2")
    p.add_argument("--spacing", default="linear", help="linear, or quantile (equal prior mass per cell)")
    p.add_argument("--out", required=True, help="FILE.png")
    p.set_defaults(_parser=p, handler=cmd_manifold)


def cmd_traverse(args: argparse.Namespace) -> int:
    run, out = load_run(args.run_dir), check_out(args.out, (".png",))
    values = numbers(args.values, float, "--values")
    dims = numbers(args.dims, int, "--dims")
    grid = ls.traverse(run, index=args.index, split=args.split, values=values, dims=dims)
    print(f"Wrote {ls.plot_traversal(grid, out, values, dims=dims)}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    run, out = load_run(args.run_dir), check_out(args.out, (".png",))
    path = ls.interpolate(run, args.a, args.b, steps=args.steps, split=args.split, mode=args.mode)
    print(f"Wrote {ls.plot_interpolation(path, out, ends=(f'{args.split} #{args.a}', f'{args.split} #{args.b}'))}")
    return 0


def cmd_bubbles(args: argparse.Namespace) -> int:
    run, out = load_run(args.run_dir), check_out(args.out, (".png",))
    print(f"Wrote {ls.plot_bubbles(run, out, n=args.n, split=args.split)}")
    return 0


def cmd_manifold(args: argparse.Namespace) -> int:
    run, out = load_run(args.run_dir), check_out(args.out, (".png",))
    print(f"Wrote {ls.plot_manifold(run, out, n=args.n, span=args.span, spacing=args.spacing)}")
    return 0
