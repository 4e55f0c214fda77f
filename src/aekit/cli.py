"""The ``aekit`` command line: train, eval, sample, reconstruct, encode.

Every user error is an :class:`aekit.errors.AekitError`; it is printed without a traceback and
the command exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.config import PRESET_FALLBACKS, PRESETS, SECTIONS, field_help, field_type, load_yaml
from aekit.errors import AekitError, ConfigError, check_choice, suggest

# --- argument parsing ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose unknown options raise ConfigError with a suggestion."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            sub = getattr(ns, "_parser", self)
            options = [o for a in sub._actions for o in a.option_strings]
            bad = extra[0]
            raise ConfigError(
                f"Unknown option '{bad}'.{suggest(bad.split('=')[0], options)} "
                f"Run 'aekit {getattr(ns, 'command', '') or ''} --help' for the list of options.".replace("  ", " ")
            )
        return ns


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (``latent_dim`` -> ``--latent-dim``); defaults stay None so a
    YAML file's values are only overridden by flags actually given."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options")
        helps = field_help(cls)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            hint = field_type(cls, f.name)
            default = f.default if f.default is not f.default_factory else None
            if default is None and f.name in PRESET_FALLBACKS:
                default = f"set by --model, else {PRESET_FALLBACKS[f.name]}"
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            text = helps.get(f.name, "")
            if f.name == "model":
                text = f"one of {', '.join(PRESETS)}; {text}"
            text = f"{text}; default: {shown}" if text else f"default: {shown}"
            text = text.replace("%", "%%")  # argparse formats help strings with %
            if hint is bool:
                group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
            else:
                group.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aekit", description="Train, evaluate and use autoencoders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(_parser=p)
        return p

    p = add("train", "Train a model and write its run directory (config, weights, metrics, plots, report).")
    p.add_argument("--config", help="YAML file of options; command-line flags override it")
    p.add_argument("--out", help="run directory to create (default: runs/<model>-<data>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (optionally with --epochs)")
    p.add_argument("--no-report", action="store_true", help="skip the plots and report.html")
    _config_flags(p)

    p = add("eval", "Print test-set metrics of a trained run.")
    _run_and_data(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior draws")
    p.add_argument("--pca-baseline", action="store_true", help="add PCA's error at k = the code size")
    p.add_argument("--iw-samples", type=int, default=5000,
                   help="samples of the importance-weighted bound nll_iw (VAE; 0 skips it; default 5000)")  # fmt: skip

    p = add("sample", "Draw new samples from a generative run and save them.")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="FILE.png (a grid or plot) or FILE.npy (the array)")
    p.add_argument("--label", type=int, help="the class to draw, for a conditional model (--condition-on labels)")
    p.add_argument("--prior", default="learned",
                   help="VQ-VAE: learned (the PixelCNN of train-prior) or uniform (independent codes)")  # fmt: skip

    p = add("train-prior", "VQ-VAE: fit a gated PixelCNN prior to the code maps of the training set.")
    p.add_argument("run_dir")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing prior")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)

    p = add("reconstruct", "Save data next to its reconstructions.")
    _run_and_data(p)
    p.add_argument("-n", type=int, default=32, help="number of samples shown")
    p.add_argument("--out", required=True, help="FILE.png (a grid or plot) or FILE.npy (the array)")

    p = add("pca-check", "Compare a linear autoencoder with PCA at the same k (MSE and subspace angles).")
    _run_and_data(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("denoise", "Corrupt test data, restore it with the model, and score both against the clean data.")
    _run_and_data(p)
    p.add_argument("--noise", required=True, help="gaussian, salt_pepper or mask")
    p.add_argument("--level", type=float, required=True, help="sigma (gaussian) or the fraction corrupted")
    p.add_argument("-n", type=int, default=16, help="number of samples shown")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="FILE.png: rows of clean, corrupted and restored samples")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("traverse", "Sweep each latent dimension with the others held at a data point's code.")
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

    p = add("interpolate", "Decode the path between the codes of two data points.")
    p.add_argument("run_dir")
    p.add_argument("--a", type=int, required=True, help="first data point (position in --split)")
    p.add_argument("--b", type=int, required=True, help="second data point")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--mode", default="linear", help="linear or slerp")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="FILE.png")

    p = add("bubbles", "2-D VAE: posterior means with their standard-deviation ellipses (the 'bubbles').")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=300, help="number of data points")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="FILE.png")

    p = add("manifold", "2-D latent: decode a regular grid of codes and tile the results.")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=15, help="grid points per axis")
    p.add_argument("--span", type=float, default=3.0, help="the grid covers [-span, span]^2")
    p.add_argument("--spacing", default="linear", help="linear, or quantile (equal prior mass per cell)")
    p.add_argument("--out", required=True, help="FILE.png")

    p = add("sweep-beta", "Train one VAE per beta and show their latent scatters side by side.")
    p.add_argument("--betas", default="1,4,10", help="comma-separated KL weights")
    p.add_argument("--out", required=True, help="directory for the runs and beta_sweep.png")
    p.add_argument("--overwrite", action="store_true", help="replace existing run directories")
    p.add_argument("--config", help="YAML file of training options")
    _config_flags(p)

    p = add("disentanglement", "dSprites runs: the beta-VAE score (Higgins et al. 2017) and MIG (Chen et al. 2018).")
    p.add_argument("run_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("energy", "Latent EBM: per-sample free energies (F_inf, and F_beta with --beta) and energy plots.")
    _run_and_data(p)
    p.add_argument("--beta", type=float, help="also compute F_beta = -(1/beta) log mean_z exp(-beta E(y, z))")
    p.add_argument("--seed", type=int, default=0, help="seed of the random restarts and latent samples")
    p.add_argument("--out", required=True, help="energies.csv; plots go beside it for 2-D data")

    p = add("encode", "Save the codes of a data set (.npy, or .npz with labels).")
    _run_and_data(p, default_split="all")
    p.add_argument("--out", required=True, help="codes.npy, or codes.npz (codes and labels)")
    return parser


def _run_and_data(p: argparse.ArgumentParser, default_split: str = "test") -> None:
    p.add_argument("run_dir")
    p.add_argument("--data", help="data to use (default: the run's own); split and normalised as in training")
    p.add_argument("--split", default=default_split, help=f"train, valid, test or all (default: {default_split})")


# --- commands ------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from aekit.run import REPORT, SUMMARY, resume, train

    given = {f.name: getattr(args, f.name) for cls in SECTIONS.values() for f in fields(cls)}
    given = {k: v for k, v in given.items() if v is not None}
    if args.resume:
        unsupported = sorted(set(given) - {"epochs", "progress"})
        if unsupported or args.config or args.out:
            raise ConfigError(
                "--resume continues a run with its saved configuration; only --epochs and --progress "
                "can change. "
                f"Remove: {', '.join(unsupported + [o for o in ('config', 'out') if getattr(args, o)])}."
            )
        run = resume(args.resume, epochs=given.get("epochs"), progress=given.get("progress"),
                     report=not args.no_report)  # fmt: skip
    else:
        values: dict[str, Any] = load_yaml(args.config) if args.config else {}
        values = {**values, **given}
        run = train(values, out=args.out, overwrite=args.overwrite, report=not args.no_report)
    summary = json.loads((run.path / SUMMARY).read_text())
    test = summary.get("test", {})
    shown = ", ".join(f"{k} {v:.4g}" for k, v in test.items() if k in ("mse", "psnr", "recon_nats", "neg_elbo"))
    print(f"Trained {summary['epochs']} epochs in {summary['train_seconds']:.1f} s "
          f"({summary['samples_per_s']:.0f} samples/s); best epoch {summary['best_epoch']}.")  # fmt: skip
    if shown:
        print(f"Test: {shown}")
    if run.data_info.get("storage") == "stream":
        print("Data: streamed from its file in blocks (--storage stream), never loaded whole.")
    print(f"Run directory: {run.path}")
    if (run.path / REPORT).is_file():
        print(f"Report: {run.path / REPORT}")
    return 0


def _in_memory(x: Any) -> torch.Tensor:
    """A split as a tensor: a streamed one (--storage stream) is read whole, for analyses that need it."""
    return x if isinstance(x, torch.Tensor) else x[:]


def _split_data(run: Any, args: argparse.Namespace, dataset: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The requested split of the run's (or --data) data set, normalised as in training."""
    dataset = dataset or run.load_data(args.data)
    if args.split == "all":
        xs = [_in_memory(x) for x in (dataset.train, dataset.valid, dataset.test)]
        ys = [dataset.train_labels, dataset.valid_labels, dataset.test_labels]
        labels = torch.cat(ys) if all(y is not None for y in ys) else None
        return torch.cat(xs), labels
    x, y = dataset.split(args.split)
    if not len(x):
        raise ConfigError(f"The {args.split} split of '{dataset.name}' is empty. Choose another --split.")
    return x, y


def cmd_eval(args: argparse.Namespace) -> int:
    from aekit.run import load_run

    run = load_run(args.run_dir)
    dataset = run.load_data(args.data)
    x, y = _split_data(run, args, dataset)
    if args.iw_samples < 0:
        raise ConfigError(f"--iw-samples must be >= 0, got {args.iw_samples}.")
    y = y if run.model.num_classes else None
    metrics = run.evaluate(
        x,
        y,
        seed=args.seed,
        iw_samples=args.iw_samples if getattr(getattr(run.model, "latent", None), "stochastic", False) else 0,
    )
    if args.pca_baseline:
        from aekit.analysis import pca_baseline

        metrics.update(pca_baseline(_in_memory(dataset.train), _in_memory(x), run.model.latent_dim))
    if args.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            if isinstance(v, list):
                v = "[" + ", ".join(f"{e:.3g}" for e in v[:16]) + (", ...]" if len(v) > 16 else "]")
            print(f"{k:>26}  {v:.6g}" if isinstance(v, float) else f"{k:>26}  {v}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit.run import load_run

    if args.n < 1:
        raise ConfigError(f"-n must be at least 1, got {args.n}.")
    run = load_run(args.run_dir)
    check_choice("prior", args.prior, ("learned", "uniform"))
    if args.prior == "uniform":
        if not hasattr(run.model, "sample_uniform"):
            raise ConfigError("--prior uniform applies to a VQ-VAE (independent uniform codes); this run is not one.")
        generator = torch.Generator(device=next(run.model.parameters()).device).manual_seed(args.seed)
        with torch.no_grad():
            samples = run.model.sample_uniform(args.n, generator=generator).cpu()
    else:
        samples = run.sample(args.n, seed=args.seed, label=args.label)
    out = _check_out(args.out, (".png", ".npy"))
    if out.suffix == ".npy":
        _save_npy(out, samples.numpy())
    elif run.data_info["kind"] == "image":
        plots.plot_image_grid(samples.clamp(0, 1), out)
    else:
        plots.plot_feature_samples(run.denormalize(run.load_data().train), samples, out)
    print(f"Wrote {args.n} samples to {out}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit.run import load_run

    run = load_run(args.run_dir)
    x, y = _split_data(run, args)
    x = run.denormalize(x[: max(args.n, 1)])
    recon = run.reconstruct(x, y[: len(x)] if run.model.num_classes and y is not None else None)
    out = _check_out(args.out, (".png", ".npy"))
    if out.suffix == ".npy":
        _save_npy(out, recon.numpy())
    elif run.data_info["kind"] == "image":
        plots.plot_reconstructions(x, recon.clamp(0, 1), out, n=len(x))
    else:
        plots.plot_feature_reconstruction(x, recon, out)
    print(f"Wrote {len(x)} reconstructions to {out}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from aekit.fsutil import atomic_path
    from aekit.run import load_run

    run = load_run(args.run_dir)
    x, labels = _split_data(run, args)
    codes = run.encode(run.denormalize(x), labels if run.model.num_classes else None).numpy()
    out = _check_out(args.out, (".npy", ".npz"))
    if out.suffix == ".npz":
        arrays = {"codes": codes} if labels is None else {"codes": codes, "labels": labels.numpy()}
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    else:
        _save_npy(out, codes)
    print(f"Wrote codes of shape {codes.shape} to {out}")
    return 0


def cmd_pca_check(args: argparse.Namespace) -> int:
    from aekit.analysis import pca_check
    from aekit.run import load_run

    run = load_run(args.run_dir)
    dataset = run.load_data(args.data)
    x, _ = _split_data(run, args, dataset)
    result = pca_check(run.model, _in_memory(dataset.train), _in_memory(x))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"k = {result['k']}: linear AE MSE {result['ae_mse']:.6g}, PCA MSE {result['pca_mse']:.6g} "
              f"(ratio {result['ae_mse'] / result['pca_mse']:.4f}); largest principal angle "
              f"{result['max_angle_deg']:.3g} degrees")  # fmt: skip
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit.analysis import denoise
    from aekit.run import load_run

    run = load_run(args.run_dir)
    if run.data_info["kind"] != "image" and args.out:
        raise ConfigError("denoise --out draws image rows; this run's data is tabular. Use --json alone.")
    out = _check_out(args.out, (".png",)) if args.out else None
    x, _ = _split_data(run, args)
    noisy, restored, metrics = denoise(run.model, x, args.noise, args.level, seed=args.seed)
    if out is not None:
        n = max(1, min(args.n, len(x)))
        rows = [("clean", x[:n]), ("corrupted", noisy[:n].clamp(0, 1)), ("restored", restored[:n].clamp(0, 1))]
        plots.plot_rows(rows, out, title=f"{args.noise} noise, level {args.level}")
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"MSE against the clean data: corrupted {metrics['mse_corrupted']:.6g}, restored "
              f"{metrics['mse_restored']:.6g} ({metrics['improvement']:.3g}x lower)")  # fmt: skip
        if out is not None:
            print(f"Wrote {out}")
    return 0


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{option} expects comma-separated {kind.__name__} values, got '{text}'.") from None


def cmd_latent(args: argparse.Namespace) -> int:
    """traverse, interpolate, bubbles and manifold: pictures of a run's latent space."""
    from aekit import latent_tools as lt
    from aekit.run import load_run

    run = load_run(args.run_dir)
    out = _check_out(args.out, (".png",))
    if args.command == "traverse":
        values = _numbers(args.values, float, "--values")
        dims = _numbers(args.dims, int, "--dims")
        grid = lt.traverse(run, index=args.index, split=args.split, values=values, dims=dims)
        lt.plot_traversal(grid, out, values, dims=dims)
    elif args.command == "interpolate":
        path = lt.interpolate(run, args.a, args.b, steps=args.steps, split=args.split, mode=args.mode)
        lt.plot_interpolation(path, out, ends=(f"{args.split} #{args.a}", f"{args.split} #{args.b}"))
    elif args.command == "bubbles":
        lt.plot_bubbles(run, out, n=args.n, split=args.split)
    else:
        lt.plot_manifold(run, out, n=args.n, span=args.span, spacing=args.spacing)
    print(f"Wrote {out}")
    return 0


def cmd_sweep_beta(args: argparse.Namespace) -> int:
    from aekit.latent_tools import beta_sweep

    given = {f.name: getattr(args, f.name) for cls in SECTIONS.values() for f in fields(cls)}
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    values.update({k: v for k, v in given.items() if v is not None})
    betas = _numbers(args.betas, float, "--betas")
    latent_dim = int(values.pop("latent_dim", 2))
    values.pop("model", None)
    values.pop("beta", None)
    figure = beta_sweep(values, betas, out_dir=args.out, latent_dim=latent_dim, overwrite=args.overwrite)
    for row in json.loads((Path(args.out) / "beta_sweep.json").read_text()):
        print(f"beta {row['beta']:>6g}: recon {row['recon_nats']:.4g} nats, KL {row['kl']:.4g} nats  ({row['run']})")
    print(f"Wrote {figure}")
    return 0


def cmd_train_prior(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit.priors import train_prior
    from aekit.run import load_run

    run = load_run(args.run_dir)
    summary = train_prior(run, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, channels=args.channels,
                          layers=args.layers, kernel=args.kernel, seed=args.seed, overwrite=args.overwrite,
                          progress=args.progress)  # fmt: skip
    print(f"Prior test NLL: {summary['test_nll']:.4g} nats per code map, {summary['test_bits_per_code']:.3f} bits "
          f"per code (uniform codes: {summary['uniform_bits_per_code']:.3f})")  # fmt: skip
    generator = torch.Generator(device=next(run.model.parameters()).device).manual_seed(args.seed)
    with torch.no_grad():
        learned, uniform = run.sample(32, seed=args.seed), run.model.sample_uniform(32, generator=generator).cpu()
    figure = run.path / "plots" / "prior_vs_uniform.png"
    plots.plot_rows([("learned prior", learned.clamp(0, 1)), ("uniform codes", uniform.clamp(0, 1))], figure,
                    title="Samples: codes drawn from the PixelCNN prior vs independently")  # fmt: skip
    print(f"Wrote {run.path / 'prior.safetensors'} and {figure}")
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    from aekit import energy_plots
    from aekit.fsutil import atomic_path
    from aekit.run import load_run

    run = load_run(args.run_dir)
    model = run.model
    if not hasattr(model, "free_energy_inf"):
        raise ConfigError(
            f"energy needs an energy-based latent model; this run is a '{run.config.model.model}' model. "
            "Train one with --model latent-ebm."
        )
    if args.beta is not None and not args.beta > 0:
        raise ConfigError(f"--beta must be > 0, got {args.beta}.")
    out = _check_out(args.out, (".csv",))
    x, _ = _split_data(run, args)
    torch.manual_seed(args.seed)  # the random restarts of the minimisation
    batches = [x[i : i + 512] for i in range(0, len(x), 512)]
    f_inf = torch.cat([model.free_energy_inf(b).detach() for b in batches])
    codes = torch.cat([model.encode(b).detach() for b in batches])
    columns = {"f_inf": f_inf}
    if args.beta is not None:
        k = model.latent_dim
        if k <= 2:  # a grid over the codes' range (+-1): the estimate converges to F_inf as beta grows
            lo, hi = float(codes.min()) - 1, float(codes.max()) + 1
            grid = (lo, hi, 2001 if k == 1 else 101)
            columns["f_beta"] = torch.cat([model.free_energy(b, args.beta, grid=grid).detach() for b in batches])
        else:
            columns["f_beta"] = torch.cat([model.free_energy(b, args.beta, n=4096).detach() for b in batches])
    header = ["index", *columns, *(f"z_{j + 1}" for j in range(codes.shape[1]))]
    rows = [[str(i), *(f"{float(c[i]):.6g}" for c in columns.values()), *(f"{float(v):.6g}" for v in codes[i])]
            for i in range(len(x))]  # fmt: skip
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    print(f"Wrote {len(x)} free energies to {out} (mean F_inf {float(f_inf.mean()):.4g})")
    if tuple(model.sample_shape) == (2,) and model.latent_dim <= 2:
        on_ellipse = run.config.data.data == "ellipse"
        figures = {"energy_landscape.png": lambda p: energy_plots.plot_energy_landscape(model, p, beta=args.beta,
                                                                                        data=x),
                   "latent_energy.png": lambda p: energy_plots.plot_latent_energy(model, x, p)}  # fmt: skip
        if model.latent_dim == 1:
            figures["decoder_curve.png"] = lambda p: energy_plots.plot_decoder_curve(
                model, x, p, true_w=(2.0, 1.0) if on_ellipse else None
            )
        for name, draw in figures.items():
            draw(out.parent / name)
            print(f"Wrote {out.parent / name}")
    return 0


def cmd_disentanglement(args: argparse.Namespace) -> int:
    from aekit.disentanglement import disentanglement_report
    from aekit.run import load_run

    report = disentanglement_report(load_run(args.run_dir), seed=args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"beta-VAE score {report['betavae_score']:.4f}   MIG {report['mig']:.4f}")
        for name, gap in report["mig_per_factor"].items():
            print(f"  MIG gap {name:>12}  {gap:.4f}")
    return 0


def _check_out(out: str, suffixes: tuple[str, ...]) -> Path:
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"--out '{out}' must end in {' or '.join(suffixes)}.")
    return path


def _save_npy(path: Path, array: np.ndarray) -> None:
    from aekit.fsutil import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "reconstruct": cmd_reconstruct,
            "encode": cmd_encode, "pca-check": cmd_pca_check, "denoise": cmd_denoise, "traverse": cmd_latent,
            "interpolate": cmd_latent, "bubbles": cmd_latent, "manifold": cmd_latent,
            "sweep-beta": cmd_sweep_beta, "disentanglement": cmd_disentanglement,
            "train-prior": cmd_train_prior, "energy": cmd_energy}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` command; returns the exit status."""
    log = logging.getLogger("aekit")  # progress of slow one-off steps, such as fetching MNIST
    if not log.handlers:
        log.addHandler(logging.StreamHandler())
        log.setLevel(logging.INFO)
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "split", None) not in (None, "train", "valid", "test", "all"):
            raise ConfigError(f"Unknown split '{args.split}'. Choose one of: train, valid, test, all.")
        return COMMANDS[args.command](args)
    except AekitError as err:
        print(f"aekit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
