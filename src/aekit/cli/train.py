"""``aekit train`` and ``aekit sweep-beta``: the commands that train models."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from aekit.analyses.latent_space import beta_sweep
from aekit.cli.common import add_config_flags, given_config, numbers
from aekit.config import load_yaml
from aekit.errors import ConfigError
from aekit.registry import family_of, preset_names
from aekit.runs.layout import REPORT, SUMMARY, read_json
from aekit.runs.run import RESUME_OPTIONS, resume, train
from aekit.training import distributed


def add_parsers(sub: Any, argv: list[str]) -> None:
    family = family_of(_named_model(argv))
    others = ", ".join(p for p in preset_names() if p not in family.presets)
    p = sub.add_parser(
        "train",
        help="Train a model and write its run directory (config, weights, metrics, plots, report).",
        description=f"Train a model and write its run directory. The options below are those of the "
        f"'{family.name}' family ({', '.join(family.presets)}); for another model: "
        f"aekit train --model NAME --help (NAME: {others}).",
    )
    p.set_defaults(_parser=p, handler=cmd_train, family=family, argv=list(argv))  # argv: recorded in command.txt
    p.add_argument("--config", help="YAML file of options; command-line flags override it")
    p.add_argument("--out", help="run directory to create (default: runs/<model>-<data>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (optionally with --epochs)")
    p.add_argument("--no-report", action="store_true", help="skip the plots and report.html")
    add_config_flags(p, family)

    vae = family_of("vae")
    p = sub.add_parser("sweep-beta", help="Train one VAE per beta and show their latent scatters side by side.")
    p.set_defaults(_parser=p, handler=cmd_sweep_beta, family=vae)
    p.add_argument("--betas", default="1,4,10", help="comma-separated KL weights")
    p.add_argument("--out", required=True, help="directory for the runs and beta_sweep.png")
    p.add_argument("--overwrite", action="store_true", help="replace existing run directories")
    p.add_argument("--config", help="YAML file of training options")
    add_config_flags(p, vae)


def _named_model(argv: list[str]) -> str:
    """The preset a train command line names (--model, else its --config file's), else the default."""
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else arg.split("=", 1)[1] if arg.startswith(
            "--config=") else None  # fmt: skip
        if path is not None and Path(path).is_file():
            values = load_yaml(path)
            model = values.get("model")
            model = model.get("model") if isinstance(model, dict) else model
            if isinstance(model, str):
                return model
    return "vae"


def cmd_train(args: argparse.Namespace) -> int:
    given = given_config(args, args.family)
    if args.resume:
        unsupported = sorted(set(given) - set(RESUME_OPTIONS))
        if unsupported or args.config or args.out:
            changeable = ", ".join("--" + k.replace("_", "-") for k in RESUME_OPTIONS)
            raise ConfigError(
                f"--resume continues a run with its saved configuration; only {changeable} can change. "
                f"Remove: {', '.join(unsupported + [o for o in ('config', 'out') if getattr(args, o)])}."
            )
        run = resume(args.resume, report=not args.no_report, **given)
    else:
        values: dict[str, Any] = load_yaml(args.config) if args.config else {}
        values = {**values, **given}
        command = shlex.join(["aekit", *args.argv])
        run = train(values, out=args.out, overwrite=args.overwrite, report=not args.no_report, command=command)
    if not distributed.world().main:  # under torchrun, rank 0 wrote the run directory and reports it
        return 0
    summary = read_json(run.path, SUMMARY)
    test = summary.get("test") or {}
    shown = ", ".join(f"{k} {_number(v)}" for k, v in test.items() if k in ("mse", "psnr", "recon_nats", "neg_elbo"))
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


def cmd_sweep_beta(args: argparse.Namespace) -> int:
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    values.update(given_config(args, args.family))
    betas = numbers(args.betas, float, "--betas")
    latent_dim = int(values.pop("latent_dim", 2))
    values.pop("model", None)
    values.pop("beta", None)
    figure = beta_sweep(values, betas, out_dir=args.out, latent_dim=latent_dim, overwrite=args.overwrite)
    for row in json.loads((Path(args.out) / "beta_sweep.json").read_text()):
        print(f"beta {row['beta']:>6g}: recon {_number(row['recon_nats'])} nats, KL {_number(row['kl'])} nats  "
              f"({row['run']})")  # fmt: skip
    print(f"Wrote {figure}")
    return 0


def _number(value: float | None) -> str:
    """A metric as printed; the JSON files write a NaN or infinite one as null."""
    return "nan" if value is None else f"{value:.4g}"
