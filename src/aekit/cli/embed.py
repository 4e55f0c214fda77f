"""``aekit embed``: 2-D maps of a run's codes beside PCA of the data, t-SNE and UMAP (seed 002)."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.analyses.embedding import METHODS, check_methods, embed, subsample
from aekit.cli.common import add_run_and_rows, check_out, rows_data
from aekit.errors import ConfigError
from aekit.figures.embedding_plots import plot_maps
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "embed", help="2-D maps of the codes (latent, t-SNE, UMAP) and of the data (PCA), side by side, as a PNG."
    )
    p.set_defaults(_parser=p, handler=cmd_embed)
    add_run_and_rows(p)
    p.add_argument("--method", default="latent",
                   help=f"one or more of {', '.join(METHODS)}, comma-separated: one panel each. latent: the codes "
                        "(k > 2: their first two principal axes); pca: PCA of the data; tsne, umap: of the codes "
                        "(umap needs pip install 'aekit[umap]'); default: latent")  # fmt: skip
    p.add_argument("--color-by", default="label", choices=("label", "none"),
                   help="colour the points by the data's labels (default) or not at all")  # fmt: skip
    p.add_argument("--max-points", type=int, default=5000,
                   help="map at most this many samples, drawn at random (default 5000)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample, t-SNE and UMAP")
    p.add_argument("--out", required=True, help="map.png")


def cmd_embed(args: argparse.Namespace) -> int:
    out = check_out(args.out, (".png",))
    methods = check_methods([m for m in args.method.replace(" ", "").split(",") if m])
    run = load_run(args.run_dir)
    x, y = rows_data(run, args)
    if args.color_by == "label" and y is None and args.data is not None:
        raise ConfigError("--color-by label needs labelled data, and this data has none. Add --color-by none.")
    n = len(x)
    keep = subsample(n, args.max_points, args.seed)
    x = x[keep]
    y = None if y is None else y[keep]
    maps = embed(run, x, y, methods, seed=args.seed)
    where = f"'{args.data}'" if args.data else f"the {args.split} split of {run.data_info['name']}"
    shown = (
        f"{len(keep):,} samples of {where}" if len(keep) == n else f"a random {len(keep):,} of {n:,} samples of {where}"
    )
    labels = None if args.color_by == "none" or y is None else y.numpy()
    plot_maps(maps, out, labels=labels, title=f"{run.path.name}: {shown}")
    print(f"Wrote {out} ({', '.join(methods)}; {len(keep)} points)")
    return 0
