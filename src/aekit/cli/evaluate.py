"""``aekit eval``, ``pca-check``, ``denoise`` and ``disentanglement``: measuring a trained run."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.cli.common import RENAMED_FLAGS, add_run_and_data, check_out, in_memory, print_json, split_data
from aekit.errors import ConfigError
from aekit.evaluation.denoising import denoise
from aekit.evaluation.disentanglement import disentanglement_report
from aekit.evaluation.linear import pca_baseline, pca_check
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES
from aekit.figures import plots
from aekit.parts.corruption import KINDS
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("eval", help="Print test-set metrics of a trained run.")
    p.set_defaults(_parser=p, handler=cmd_eval)
    add_run_and_data(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior draws")
    p.add_argument("--pca-baseline", action="store_true", help="add PCA's error at k = the code size")
    p.add_argument("--iw-samples", type=int, default=DEFAULT_IW_SAMPLES,
                   help="draws of the importance-weighted bound nll_iw (models with a likelihood bound, e.g. a "
                        f"VAE; 0 skips it; default {DEFAULT_IW_SAMPLES}; the paper protocol is 5000)")  # fmt: skip

    p = sub.add_parser(
        "pca-check", help="Compare a linear autoencoder with PCA at the same k (MSE and subspace angles)."
    )
    p.set_defaults(_parser=p, handler=cmd_pca_check)
    add_run_and_data(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser(
        "denoise", help="Corrupt test data, restore it with the model, and score both against the clean data."
    )
    p.set_defaults(_parser=p, handler=cmd_denoise)
    p.renamed_flags = RENAMED_FLAGS  # type: ignore[attr-defined]
    add_run_and_data(p)
    p.add_argument("--noise", help=f"{', '.join(KINDS)} (default: the noise the run was trained with)")
    p.add_argument("--noise-level", type=float,
                   help="sigma (gaussian) or the fraction corrupted (default: the run's own)")  # fmt: skip
    p.add_argument("-n", type=int, default=16, help="number of samples shown")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="FILE.png: rows of clean, corrupted and restored samples")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser(
        "disentanglement",
        help="dSprites runs: the beta-VAE score (Higgins et al. 2017), the FactorVAE score (Kim & Mnih 2018), "
        "MIG (Chen et al. 2018) and DCI (Eastwood & Williams 2018).",
    )
    p.set_defaults(_parser=p, handler=cmd_disentanglement)
    p.add_argument("run_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_eval(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    dataset = run.load_data(args.data)
    x, y = split_data(run, args, dataset)
    if args.iw_samples < 0:
        raise ConfigError(f"--iw-samples must be >= 0, got {args.iw_samples}.")
    metrics = run.evaluate(x, y if run.model.capabilities.conditional else None, seed=args.seed,
                           iw_samples=args.iw_samples)  # fmt: skip
    if args.pca_baseline:
        metrics.update(pca_baseline(in_memory(dataset.train), in_memory(x), run.model.latent_dim))
    if args.json:
        print_json(metrics)
    else:
        for k, v in metrics.items():
            if isinstance(v, list):
                v = "[" + ", ".join(f"{e:.3g}" for e in v[:16]) + (", ...]" if len(v) > 16 else "]")
            print(f"{k:>26}  {v:.6g}" if isinstance(v, float) else f"{k:>26}  {v}")
    return 0


def cmd_pca_check(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    dataset = run.load_data(args.data)
    x, _ = split_data(run, args, dataset)
    result = pca_check(run.model, in_memory(dataset.train), in_memory(x))
    if args.json:
        print_json(result)
    else:
        print(f"k = {result['k']}: linear AE MSE {result['ae_mse']:.6g}, PCA MSE {result['pca_mse']:.6g} "
              f"(ratio {result['ae_mse'] / result['pca_mse']:.4f}); largest principal angle "
              f"{result['max_angle_deg']:.3g} degrees")  # fmt: skip
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    run = load_run(args.run_dir)
    noise, level = run.config.model.corruption()  # the run's own noise by default
    if args.noise is None and noise == "none":
        raise ConfigError(
            f"The run '{run.path}' was trained without input noise, so there is no noise of its own to use; "
            "name one: --noise mask --noise-level 0.5 (or gaussian, salt_pepper)."
        )
    if args.noise is not None and args.noise != noise:
        noise, level = args.noise, None
    level = args.noise_level if args.noise_level is not None else level
    if level is None:
        raise ConfigError(f"--noise {noise} needs a level: add --noise-level (sigma, or the fraction corrupted).")
    if run.data_info["kind"] != "image" and args.out:
        raise ConfigError("denoise --out draws image rows; this run's data is tabular. Use --json alone.")
    out = check_out(args.out, (".png",)) if args.out else None
    x, _ = split_data(run, args)
    noisy, restored, metrics = denoise(run.model, x, noise, level, seed=args.seed)
    metrics = {"noise": noise, "noise_level": level, **metrics}
    if out is not None:
        n = max(1, min(args.n, len(x)))
        rows = [("clean", x[:n]), ("corrupted", noisy[:n].clamp(0, 1)), ("restored", restored[:n].clamp(0, 1))]
        plots.plot_rows(rows, out, title=f"{noise} noise, level {level}")
    if args.json:
        print_json(metrics)
    else:
        print(f"{noise} noise, level {level:g}. MSE against the clean data: corrupted {metrics['mse_corrupted']:.6g}, "
              f"restored {metrics['mse_restored']:.6g} ({metrics['improvement']:.3g}x lower)")  # fmt: skip
        if out is not None:
            print(f"Wrote {out}")
    return 0


def cmd_disentanglement(args: argparse.Namespace) -> int:
    report = disentanglement_report(load_run(args.run_dir), seed=args.seed)
    if args.json:
        print_json(report)
    else:
        print(f"beta-VAE score {report['betavae_score']:.4f}   FactorVAE score {report['factorvae_score']:.4f}")
        print(f"MIG {report['mig']:.4f}")
        for name, gap in report["mig_per_factor"].items():
            print(f"  MIG gap {name:>12}  {gap:.4f}")
        print(f"DCI disentanglement {report['dci_disentanglement']:.4f}   completeness "
              f"{report['dci_completeness']:.4f}   informativeness {report['dci_informativeness']:.4f}")  # fmt: skip
    return 0
