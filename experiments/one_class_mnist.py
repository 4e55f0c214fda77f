#!/usr/bin/env python
"""One-class MNIST anomaly detection (Ruff et al. 2018, "Deep One-Class Classification", ICML, Table 1).

For every digit D and model M: train M on the training images of digit D only (``--classes D``),
score the whole MNIST test split (all ten digits; the nine others are the anomalies), and record
the AUROC of the model's best-founded score (``aekit score``'s auto: nll_iw for the VAE,
free_energy for the latent EBM, neg_log_joint for a VQ-VAE with its PixelCNN prior, recon for
AE/DAE) and of the plain reconstruction error (``--score recon``).

Everything goes through the ``aekit`` CLI (the executable next to ``sys.executable``), one run at a
time.  Resumable: a (model, digit) whose score JSONs exist is skipped, a finished training or prior
is not redone; each result is written atomically into ``experiments/results/one_class_mnist.json``.
At the end (and after every run) ``experiments/results/one_class_mnist.md`` is rewritten.

Usage:
    python experiments/one_class_mnist.py                       # the whole grid, preset epochs
    python experiments/one_class_mnist.py --models ae,vae --digits 0-4
    python experiments/one_class_mnist.py --epochs ae=30,vq-vae=5 --prior-epochs 5
    python experiments/one_class_mnist.py --model-digits vq-vae=0,1,2   # fewer digits for one model
    python experiments/one_class_mnist.py --report-only          # rebuild the .md from the JSON

Run heavy grids with ``nice -n 10`` and ``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("ae", "dae", "vae", "vq-vae", "latent-ebm")
DIGITS = tuple(range(10))
# Default epochs per model: aekit's preset default (50) for the MLP models, fewer for the slow ones.
# The recorded grid used smaller values (--epochs): experiments/results/one_class_mnist.md lists them.
DEFAULT_EPOCHS = {"ae": 50, "dae": 50, "vae": 50, "vq-vae": 5, "latent-ebm": 20}
DEFAULT_PRIOR_EPOCHS = 5

# Ruff et al. 2018, Table 1, one-class MNIST AUROC (%), means over seeds (digits 0..9).
PAPER = {
    "DCAE": [97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4],
    "OC Deep SVDD": [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5],
}

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "one_class_mnist.json"
REPORT = ROOT / "results" / "one_class_mnist.md"
AEKIT = str(Path(sys.executable).with_name("aekit"))
# One thread per aekit process unless told otherwise (a shared machine: see the module docstring).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


# --- small helpers ------------------------------------------------------------------------------


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"runs": {}}


def save_invocation(argv: list[str]) -> None:
    results = load_results()
    threads = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
    nice = f"nice -n {os.nice(0)} " if os.nice(0) else ""
    cmd = f"{threads} {nice}.venv/bin/python experiments/one_class_mnist.py " + " ".join(
        a if a and all(c.isalnum() or c in "-_=,./" for c in a) else repr(a) for a in argv
    )
    results.setdefault("invocations", []).append(
        {"command": cmd.strip(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    )
    atomic_write(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")


def save_result(model: str, digit: int, entry: dict) -> None:
    results = load_results()  # re-read: another invocation may have added runs
    results["runs"].setdefault(model, {})[str(digit)] = entry
    atomic_write(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")


def parse_digits(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            out += range(int(a), int(b) + 1)
        else:
            out.append(int(part))
    return out


def parse_map(text: str | None, value) -> dict:
    """``"ae=30,vq-vae=5"`` -> {"ae": 30, "vq-vae": 5} (value: the converter)."""
    out = {}
    for part in (text or "").split(";" if ";" in (text or "") else ","):
        if part.strip():
            k, v = part.split("=", 1)
            out[k.strip()] = value(v.strip())
    return out


def run(cmd: list[str], log: Path) -> float:
    """Run one aekit command, its output appended to ``log``; returns the wall seconds."""
    start = time.monotonic()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)} (see {log})")
    return time.monotonic() - start


def score(run_dir: Path, kind: str | None, log: Path) -> tuple[dict, float]:
    """``aekit score RUN --json`` (auto score, or ``--score kind``): the parsed JSON and the seconds."""
    name = "auto" if kind is None else kind
    cmd = [AEKIT, "score", str(run_dir), "--json", "--out", str(run_dir / f"scores_{name}.csv")]
    if kind is not None:
        cmd += ["--score", kind]
    start = time.monotonic()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
        f.write(proc.stdout)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)} (see {log})")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    result = json.loads(lines[-1])
    atomic_write(run_dir / f"score_{name}.json", json.dumps(result, indent=1) + "\n")
    return result, time.monotonic() - start


# --- one (model, digit) -------------------------------------------------------------------------


def one(model: str, digit: int, epochs: int, prior_epochs: int, out_root: Path, report: bool) -> dict:
    run_dir = out_root / model / f"digit{digit}"
    auto_json, recon_json = run_dir / "score_auto.json", run_dir / "score_recon.json"
    entry_json = run_dir / "one_class.json"
    if auto_json.exists() and recon_json.exists() and entry_json.exists():
        return json.loads(entry_json.read_text())
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = out_root / model / f"digit{digit}.log"
    seconds: dict[str, float] = {}
    train_cmd = [AEKIT, "train", "--model", model, "--data", "mnist", "--classes", str(digit),
                 "--epochs", str(epochs), "--out", str(run_dir), "--no-progress"]  # fmt: skip
    if not report:
        train_cmd.append("--no-report")
    if not (run_dir / "summary.json").exists():  # no finished training: (re)start it
        seconds["train"] = run([*train_cmd, "--overwrite"], log)
    prior_cmd = None
    if model == "vq-vae":
        prior_cmd = [AEKIT, "train-prior", str(run_dir), "--epochs", str(prior_epochs), "--no-progress"]
        if not (run_dir / "prior.safetensors").exists():
            seconds["prior"] = run([*prior_cmd, "--overwrite"], log)
    auto, seconds["score_auto"] = score(run_dir, None, log)
    if auto["score"] == "recon":  # AE/DAE: the auto score is the reconstruction error itself
        recon = dict(auto, auto=False)
        atomic_write(recon_json, json.dumps(recon, indent=1) + "\n")
        seconds["score_recon"] = 0.0
    else:
        recon, seconds["score_recon"] = score(run_dir, "recon", log)
    summary = json.loads((run_dir / "summary.json").read_text())
    entry = {
        "model": model,
        "digit": digit,
        "epochs": epochs,
        "prior_epochs": prior_epochs if model == "vq-vae" else None,
        "run_dir": str(run_dir),
        "commands": [" ".join(train_cmd)] + ([" ".join(prior_cmd)] if prior_cmd else []),
        "auto_score": auto["score"],
        "auroc_auto": auto.get("auroc"),
        "ap_auto": auto.get("average_precision"),
        "auroc_recon": recon.get("auroc"),
        "ap_recon": recon.get("average_precision"),
        "inliers": auto.get("inliers"),
        "outliers": auto.get("outliers"),
        "best_epoch": summary.get("best_epoch"),
        "train_seconds_inside": summary.get("train_seconds"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "seconds_total": round(sum(seconds.values()), 1),
    }
    atomic_write(entry_json, json.dumps(entry, indent=1) + "\n")
    return entry


# --- the Markdown report ------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def write_report(models: list[str]) -> None:
    runs = load_results()["runs"]
    models = [m for m in MODELS if m in runs] + [m for m in runs if m not in MODELS]
    lines = [
        "# One-class MNIST anomaly detection (Ruff et al. 2018, Table 1)",
        "",
        "Protocol: train on the training images of one digit (`aekit train --classes D`: ~5,000 of the",
        "50,000-image train split, its valid split filtered the same way), score the whole 10,000-image",
        "test split, the other nine digits being the anomalies; AUROC (%) per digit and the mean over",
        "the digits run. One seed (0) per run; the paper's values are means over 10 seeds (its ± std",
        "are not reproduced here).",
        "",
        "**Preprocessing differs:** the paper's images were preprocessed with global contrast",
        "normalisation (L1) followed by min-max scaling to [0, 1] (per digit class); aekit's runs use the",
        "plain [0, 1] pixels. Paper columns: DCAE (deep convolutional autoencoder, reconstruction",
        "error) and one-class Deep SVDD, Ruff et al. 2018, Table 1.",
        "",
        "Produced by `experiments/one_class_mnist.py` on a CPU-only machine (2 cores shared with other",
        "jobs, each aekit process on one thread), runs trained with `--no-report`. Invocations:",
        "",
    ]
    results = load_results()
    for inv in results.get("invocations", []):
        lines.append(f"- {inv['started']}: `{inv['command']}`")
    missing = [m for m in MODELS if m not in runs]
    if missing:
        lines += ["", "Models with no finished run (time budget): " + ", ".join(missing) + "."]
    lines.append("")
    # settings actually used
    lines += ["## Runs", "",
              "| model | digits run | epochs | auto score | mean wall s / digit | train cmd (digit 0 or first) |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for m in models:
        entries = [runs[m][d] for d in sorted(runs[m], key=int)]
        epochs = sorted({e["epochs"] for e in entries})
        ep = ",".join(map(str, epochs))
        if m == "vq-vae":
            ep += " (+ prior " + ",".join(map(str, sorted({e["prior_epochs"] for e in entries}))) + ")"
        secs = [e["seconds_total"] for e in entries if e["seconds"].get("train") is not None]
        mean_s = f"{sum(secs) / len(secs):.0f}" if secs else "–"
        parts = {}
        for e in entries:
            for k, v in e["seconds"].items():
                parts.setdefault(k, []).append(v)
        breakdown = ", ".join(f"{k} {sum(v) / len(v):.0f}" for k, v in parts.items())
        lines.append(f"| {m} | {','.join(sorted(runs[m], key=int))} | {ep} | {entries[0]['auto_score']} | "
                     f"{mean_s} ({breakdown}) | "
                     f"`{' ; '.join(entries[0]['commands']).replace(AEKIT, 'aekit')}` |")  # fmt: skip
    lines.append("")
    for title, key, note in (
        ("AUROC (%) of the auto score", "auroc_auto",
         "auto: recon (AE, DAE), nll_iw (VAE), neg_log_joint (VQ-VAE + PixelCNN prior), free_energy (latent EBM)"),
        ("AUROC (%) of the reconstruction error (`--score recon`)", "auroc_recon",
         "the same runs scored by reconstruction error (for AE and DAE the auto score is this score: "
         "one score call, copied)"),
    ):  # fmt: skip
        lines += [f"## {title}", "", note + ".", ""]
        header = ["digit"] + models + [f"{p} (paper)" for p in PAPER]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for d in DIGITS:
            row = [str(d)]
            for m in models:
                e = runs[m].get(str(d))
                row.append(fmt(e[key]) if e else "not run")
            row += [f"{PAPER[p][d]:.1f}" for p in PAPER]
            lines.append("| " + " | ".join(row) + " |")
        row = ["**mean**"]
        for m in models:
            vals = [runs[m][d][key] for d in runs[m] if runs[m][d][key] is not None]
            tag = "" if len(vals) == 10 else f" (n={len(vals)})"
            row.append(f"**{fmt(sum(vals) / len(vals))}**{tag}" if vals else "–")
        row += [f"**{sum(PAPER[p]) / 10:.1f}**" for p in PAPER]
        lines.append("| " + " | ".join(row) + " |")
        # paper means over the same digits, for models run on fewer than ten
        partial = [m for m in models if 0 < len(runs[m]) < 10]
        for m in partial:
            ds = sorted(int(d) for d in runs[m])
            vals = [runs[m][str(d)][key] for d in ds]
            paper = ", ".join(f"{p} {sum(PAPER[p][d] for d in ds) / len(ds):.1f}" for p in PAPER)
            lines.append("")
            lines.append(f"{m} ran digits {','.join(map(str, ds))} only (budget): its mean there is "
                         f"{fmt(sum(vals) / len(vals))}; the paper's over the same digits: {paper}.")  # fmt: skip
        lines.append("")
    notes = results.get("notes", [])
    if notes:
        lines += ["## Findings and problems", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Comparison of means with the paper", ""]
    svdd, dcae = sum(PAPER["OC Deep SVDD"]) / 10, sum(PAPER["DCAE"]) / 10
    for m in models:
        for key, label in (("auroc_auto", "auto"), ("auroc_recon", "recon")):
            ds = [d for d in runs[m] if runs[m][d][key] is not None]
            if not ds:
                continue
            mean = 100 * sum(runs[m][d][key] for d in ds) / len(ds)
            if len(ds) == 10:
                s, c = svdd, dcae
            else:
                s = sum(PAPER["OC Deep SVDD"][int(d)] for d in ds) / len(ds)
                c = sum(PAPER["DCAE"][int(d)] for d in ds) / len(ds)
            verdict = (
                ("beats" if mean > s else "below")
                + f" Deep SVDD ({s:.1f}), "
                + ("beats" if mean > c else "below")
                + f" DCAE ({c:.1f})"
            )
            lines.append(f"- {m} ({label}, {len(ds)} digits): {mean:.1f} — {verdict}")
    lines.append("")
    atomic_write(REPORT, "\n".join(lines))


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    p.add_argument("--digits", default="0-9", help="e.g. 0-9 or 0,3,5")
    p.add_argument(
        "--model-digits",
        default=None,
        help="per-model digit lists overriding --digits, e.g. 'vq-vae=0-4;latent-ebm=0,1'",
    )
    p.add_argument("--epochs", default=None, help="per-model epochs, e.g. ae=30,vq-vae=5 (others: defaults "
                   + json.dumps(DEFAULT_EPOCHS) + ")")  # fmt: skip
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every model's epochs")
    p.add_argument("--prior-epochs", type=int, default=DEFAULT_PRIOR_EPOCHS, help="VQ-VAE PixelCNN prior epochs")
    p.add_argument("--out-root", default="runs/one-class", help="run directories: OUT_ROOT/MODEL/digitD")
    p.add_argument("--report", action="store_true", help="let aekit train write its plots and report.html")
    p.add_argument(
        "--order",
        choices=("model", "digit"),
        default="model",
        help="loop models outside (model) or digits outside (digit)",
    )
    p.add_argument(
        "--interleave",
        default="",
        help="models run last, digit by digit in turn (e.g. the slow latent-ebm,vq-vae), "
        "so a time budget leaves each of them some digits",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds: start no run that the last run of its model says would end past this",
    )
    p.add_argument(
        "--estimates",
        default=None,
        help="seconds per run of a model before one has run, for --time-budget, e.g. vq-vae=700",
    )
    p.add_argument("--report-only", action="store_true", help="only rebuild the Markdown from the JSON")
    args = p.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            p.error(f"unknown model {m!r}")
    if args.report_only:
        write_report(models)
        print(REPORT)
        return 0
    digits = parse_digits(args.digits)
    per_digits = {k: parse_digits(v) for k, v in parse_map(args.model_digits, str).items()}
    epochs = dict(DEFAULT_EPOCHS, **parse_map(args.epochs, int))
    epochs = {m: max(1, round(e * args.epochs_scale)) for m, e in epochs.items()}
    out_root = Path(args.out_root)

    plan = [(m, d) for m in models for d in per_digits.get(m, digits)]
    if args.order == "digit":
        plan.sort(key=lambda md: (md[1], models.index(md[0])))
    last = [m for m in models if m in args.interleave.split(",")]
    if last:
        plan = [md for md in plan if md[0] not in last] + sorted(
            (md for md in plan if md[0] in last), key=lambda md: (md[1], last.index(md[0]))
        )
    save_invocation(sys.argv[1:] if argv is None else argv)
    print(f"aekit: {AEKIT}\nplan: {len(plan)} runs; epochs {epochs}; prior epochs {args.prior_epochs}", flush=True)
    failures, skipped, cost = [], [], parse_map(args.estimates, float)
    start = time.monotonic()
    for i, (m, d) in enumerate(plan, 1):
        t0 = time.monotonic()
        done = (out_root / m / f"digit{d}" / "one_class.json").exists()
        if args.time_budget and not done and t0 - start + cost.get(m, 0.0) > args.time_budget:
            skipped.append(f"{m} digit {d}")
            print(f"[{i}/{len(plan)}] {m} digit {d}: not started (time budget {args.time_budget:.0f} s)", flush=True)
            continue
        try:
            entry = one(m, d, epochs[m], args.prior_epochs, out_root, args.report)
        except Exception as exc:  # keep going; the failure is reported
            failures.append(f"{m} digit {d}: {exc}")
            print(f"[{i}/{len(plan)}] {m} digit {d}: FAILED {exc}", flush=True)
            continue
        if not done:
            cost[m] = time.monotonic() - t0
        save_result(m, d, entry)
        write_report(models)
        print(f"[{i}/{len(plan)}] {m} digit {d}: auroc {entry['auto_score']} {fmt(entry['auroc_auto'])}, "
              f"recon {fmt(entry['auroc_recon'])} ({time.monotonic() - t0:.0f} s; {entry['seconds']})",
              flush=True)  # fmt: skip
    write_report(models)
    print(f"wrote {RESULTS} and {REPORT}")
    for f in failures:
        print("FAILED:", f)
    if skipped:
        print("not started (time budget):", "; ".join(skipped))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
