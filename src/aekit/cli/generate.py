"""``aekit sample`` and ``aekit train-prior``: new data from a generative run, and the VQ-VAE's prior."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.cli.common import check_out, save_npy
from aekit.errors import ConfigError, check_choice
from aekit.figures import plots
from aekit.runs.priors import plot_prior_vs_uniform, train_prior
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sample", help="Draw new samples from a generative run and save them.")
    p.set_defaults(_parser=p, handler=cmd_sample)
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="FILE.png (a grid or plot) or FILE.npy (the array)")
    p.add_argument("--label", type=int, help="the class to draw, for a conditional model (--condition-on labels)")
    p.add_argument("--prior", default="learned",
                   help="VQ-VAE: learned (the PixelCNN of train-prior) or uniform (independent codes)")  # fmt: skip

    p = sub.add_parser("train-prior", help="VQ-VAE: fit a gated PixelCNN prior to the code maps of the training set.")
    p.set_defaults(_parser=p, handler=cmd_train_prior)
    p.add_argument("run_dir")
    p.add_argument("--epochs", type=int, default=50, help="at most this many (early stopping: --patience)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better valid NLL; keep the best (0: off)")  # fmt: skip
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--layers", type=int, default=None,
                   help="gated layers (default: 8, more if the code map needs them to be covered)")  # fmt: skip
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing prior")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)


def cmd_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}.")
    check_choice("prior", args.prior, ("learned", "uniform"))
    run = load_run(args.run_dir)
    samples = run.sample(args.n, seed=args.seed, label=args.label, prior=args.prior)
    out = check_out(args.out, (".png", ".npy"))
    if out.suffix == ".npy":
        save_npy(out, samples.numpy())
    elif run.data_info["kind"] == "image":
        plots.plot_image_grid(samples.clamp(0, 1), out)
    else:
        plots.plot_feature_samples(run.denormalize(run.load_data().train), samples, out)
    print(f"Wrote {args.n} samples to {out}")
    return 0


def cmd_train_prior(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    summary = train_prior(run, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                          channels=args.channels, layers=args.layers, kernel=args.kernel, seed=args.seed,
                          overwrite=args.overwrite, progress=args.progress)  # fmt: skip
    ran = len(summary["records"])
    print(f"Prior: {summary['prior']['layers']} layers, {ran} epochs (best {summary['best_epoch']}"
          f"{', stopped early' if summary['stopped_early'] else ''})")  # fmt: skip
    print(f"Prior test NLL: {summary['test_nll']:.4g} nats per code map, {summary['test_bits_per_code']:.3f} bits "
          f"per code (uniform codes: {summary['uniform_bits_per_code']:.3f})")  # fmt: skip
    figure = plot_prior_vs_uniform(run, seed=args.seed)
    print(f"Wrote {run.path / 'prior.safetensors'} and {figure}")
    return 0
