"""``aekit encode`` and ``aekit reconstruct``: a trained run's codes and reconstructions of data."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from aekit.cli.common import add_run_and_data, check_out, save_npy, split_data
from aekit.figures import plots
from aekit.fsutil import atomic_path
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("encode", help="Save the codes of a data set (.npy, or .npz with labels).")
    p.set_defaults(_parser=p, handler=cmd_encode)
    add_run_and_data(p, default_split="all")
    p.add_argument("--out", required=True, help="codes.npy, or codes.npz (codes and labels)")

    p = sub.add_parser("reconstruct", help="Save data next to its reconstructions.")
    p.set_defaults(_parser=p, handler=cmd_reconstruct)
    add_run_and_data(p)
    p.add_argument("-n", type=int, default=32, help="number of samples shown")
    p.add_argument("--out", required=True, help="FILE.png (a grid or plot) or FILE.npy (the array)")


def cmd_encode(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    x, labels = split_data(run, args)
    codes = run.encode(run.denormalize(x), labels if run.model.capabilities.conditional else None).numpy()
    out = check_out(args.out, (".npy", ".npz"))
    if out.suffix == ".npz":
        arrays = {"codes": codes} if labels is None else {"codes": codes, "labels": labels.numpy()}
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    else:
        save_npy(out, codes)
    print(f"Wrote codes of shape {codes.shape} to {out}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    x, y = split_data(run, args)
    x = run.denormalize(x[: max(args.n, 1)])
    recon = run.reconstruct(x, y[: len(x)] if run.model.capabilities.conditional and y is not None else None)
    out = check_out(args.out, (".png", ".npy"))
    if out.suffix == ".npy":
        save_npy(out, recon.numpy())
    elif run.data_info["kind"] == "image":
        plots.plot_reconstructions(x, recon.clamp(0, 1), out, n=len(x))
    else:
        plots.plot_feature_reconstruction(x, recon, out)
    print(f"Wrote {len(x)} reconstructions to {out}")
    return 0
