"""Peak resident memory of aekit's command-line training, in memory and streamed from a file.

Every measurement runs ``python -m aekit.cli train ...`` as a child process of this script and takes:

- peak RSS: the kernel's own high-water mark of the resident set (``ru_maxrss``, read by a small launcher
  process in between, with ``getrusage(RUSAGE_CHILDREN)``: the largest of the command and any children it
  waited for, exact, counting file-backed pages, such as those of a memory-mapped data file, as well as
  anonymous memory);
- peak anon: the largest anonymous resident memory (``RssAnon`` in /proc/PID/status, i.e. the heap:
  tensors, arrays, Python objects) summed over the child and its own children, sampled every 50 ms;
- peak file: the largest file-backed resident memory (``RssFile``), sampled the same way;
- samples/s and train seconds from the run's summary.json.

Part 1, models (target: below 1.5 GiB peak RSS): the MLP VAE on MNIST (50,000 training images, 2 epochs,
as in the performance issue), and, for one epoch, a conv autoencoder (``--arch conv --hidden 32,64``) and
the VQ-VAE (its defaults). Those two are slow on a CPU (a few hundred samples/s), so by default they
train on the first --subset MNIST images written to a .npy file, split 80/10/10; --subset 0 trains them
on MNIST itself. A bare ``import aekit`` gives the interpreter's and torch's baseline.

Part 2, larger-than-memory data: .npy files of float32 rows of 784 values in [0, 1] (MNIST train tiled,
each copy with a fresh random set of pixels flipped, x -> 1 - x), of the sizes in --stream-gib, written
chunk by chunk through numpy.lib.format.open_memmap so that this script never holds a whole file, in a
temporary folder under /tmp, one file at a time, each deleted after its runs. Each file trains the VAE
784-400-20 (with ``--normalize none`` unless --normalize says otherwise: the rows stay in [0, 1] and the
likelihood is Bernoulli, as on MNIST, where aekit would standardise tabular data) for one epoch with
``--storage stream`` (batches read from the file, not loaded into memory); the
smallest also with ``--storage memory``, alternating the two over --compare-rounds rounds, for the
throughput ratio (target: stream within 20% of memory). RSS flatness: the peak RSS of the largest file's
stream run minus that of the smallest's (target: roughly flat, far less than the files' difference in
size). The files are freshly written, so they are read from the page cache, not from the disk.
When this aekit has no ``--storage`` option, part 2 says so and runs only the default (in-memory)
loader on the smallest file.

Usage: python bench/bench_memory.py [--stream-gib 0.5,1.0,2.2] [--subset 5000] [--compare-rounds 4]
                                    [--normalize none] [--skip-models] [--skip-stream] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

import aekit

GIB = 2**30
D = 784  # MNIST pixels per row
TARGET_MODEL_GIB = 1.5
POLL_SECONDS = 0.05
TRAIN = [sys.executable, "-m", "aekit.cli", "train"]
COMMON = ["--no-progress", "--no-report", "--overwrite"]


# --- measuring one child process --------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """RssAnon and RssFile of one process, in bytes (empty once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                pids += [int(c) for c in Path(f"/proc/{pids[i]}/task/{task}/children").read_text().split()]
        except OSError:
            pass
        i += 1
    return pids


# A small launcher between this script and the measured command: a child's ru_maxrss starts from the RSS of
# the process it was forked from, which here (torch imported, MNIST loaded) is larger than some results.
LAUNCHER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def measure(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` to completion; its peak memory (GiB), wall seconds and exit code."""
    start = time.perf_counter()
    peak_anon = peak_file = 0
    maxrss = log.with_suffix(".maxrss")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(maxrss), *cmd], stdout=out, stderr=out)
        while proc.poll() is None:
            fields = [_status(p) for p in _tree(proc.pid)[1:]]  # the command and its children, not the launcher
            peak_anon = max(peak_anon, sum(f.get("RssAnon", 0) for f in fields))
            peak_file = max(peak_file, sum(f.get("RssFile", 0) for f in fields))
            time.sleep(POLL_SECONDS)
    result = {"peak_rss_gib": int(maxrss.read_text()) * 1024 / GIB, "peak_anon_gib": peak_anon / GIB,
              "peak_file_gib": peak_file / GIB, "wall_seconds": time.perf_counter() - start,
              "returncode": proc.returncode, "command": " ".join(cmd)}  # fmt: skip
    if proc.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        print(f"  FAILED (exit {proc.returncode}): {result['command']}\n{tail}", flush=True)
    return result


def train(args: list[str], out: Path) -> dict:
    """``aekit train`` with ``args``, measured; adds samples/s and train seconds from its summary.json."""
    result = measure([*TRAIN, *args, *COMMON, "--out", str(out)], out.with_suffix(".log"))
    summary = out / "summary.json"
    if result["returncode"] == 0 and summary.exists():
        s = json.loads(summary.read_text())
        result.update(samples_per_s=s["samples_per_s"], train_seconds=s["train_seconds"])
    shutil.rmtree(out, ignore_errors=True)
    return result


def row(name: str, r: dict, extra: str = "") -> str:
    if r["returncode"]:
        return f"{name:<34}{'failed':>10}"
    speed = f"{r['samples_per_s']:>12,.0f}" if "samples_per_s" in r else f"{'':>12}"
    return (f"{name:<34}{r['peak_rss_gib']:>10.2f}{r['peak_anon_gib']:>10.2f}{r['peak_file_gib']:>10.2f}"
            f"{speed}{r['wall_seconds']:>9.0f}{extra}")  # fmt: skip


HEADER = f"{'run':<34}{'peak RSS':>10}{'anon':>10}{'file':>10}{'samples/s':>12}{'wall s':>9}"


# --- part 1: models on MNIST ------------------------------------------------------------------------


def bench_models(tmp: Path, subset: int) -> dict:
    data = "mnist"
    if subset:
        images = aekit.load_dataset("mnist").train[:subset].numpy()  # (n, 1, 28, 28) in [0, 1]
        data = str(tmp / f"mnist{subset}.npy")
        np.save(data, images)
    small = f"first {subset:,} MNIST images, .npy" if subset else "MNIST"
    vae = ["--model", "vae", "--hidden", "400", "--latent-dim", "20"]
    conv = ["--model", "ae", "--arch", "conv", "--hidden", "32,64", "--latent-dim", "20"]
    runs = {
        "vae mlp 400 (MNIST, 2 epochs)": [*vae, "--data", "mnist", "--epochs", "2"],
        "ae conv 32,64 (1 epoch)": [*conv, "--data", data, "--epochs", "1"],
        "vq-vae (1 epoch)": ["--model", "vq-vae", "--data", data, "--epochs", "1"],
    }
    print(f"\npart 1: models (target: peak RSS < {TARGET_MODEL_GIB} GiB); conv ae and vq-vae on: {small}")
    print(HEADER + f"{'< target':>10}", flush=True)
    results = {}
    for name, args in [("baseline: import aekit", None), *runs.items()]:
        if args is None:
            r = measure([sys.executable, "-c", "import aekit, aekit.cli"], tmp / "import.log")
        else:
            r = train(args, tmp / "run")
        results[name] = r
        print(row(name, r, f"{'yes' if r['peak_rss_gib'] < TARGET_MODEL_GIB else 'NO':>10}"), flush=True)
    return results


# --- part 2: streaming larger-than-memory files -----------------------------------------------------


def write_rows(path: Path, rows: int, base: np.ndarray, flips: int, seed: int) -> None:
    """A float32 (rows, 784) .npy of ``base`` tiled, each chunk with ``flips`` random pixels per row flipped."""
    rng = np.random.default_rng(seed)
    out = open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, base.shape[1]))
    for start in range(0, rows, len(base)):
        block = base[: min(len(base), rows - start)].copy()
        idx = rng.integers(0, block.shape[1], (len(block), flips))
        at = np.arange(len(block))[:, None]
        block[at, idx] = 1 - block[at, idx]
        out[start : start + len(block)] = block
        out.flush()
    del out


def has_storage_option() -> bool:
    help_text = subprocess.run([*TRAIN, "--help"], capture_output=True, text=True, check=True).stdout
    return "--storage" in help_text


def bench_stream(tmp: Path, sizes_gib: list[float], rounds: int, flips: int, normalize: str) -> dict:
    print("\npart 2: larger-than-memory data, VAE 784-400-20, 1 epoch, valid and test 1% each", flush=True)
    storage = has_storage_option()
    if not storage:
        print("  skipped: this aekit has no --storage option; only the default loader runs, on the smallest file")
        sizes_gib = sizes_gib[:1]
    need = max(sizes_gib) * GIB + GIB  # one file at a time, plus room for the run folders
    free = shutil.disk_usage(tmp).free
    if free < need:
        print(f"  skipped: {free / GIB:.1f} GiB free under {tmp}, {need / GIB:.1f} GiB needed")
        return {"skipped": "disk"}
    base = aekit.load_dataset("mnist").train.flatten(1).numpy()  # (50000, 784) float32 in [0, 1]
    print(HEADER + f"{'file GiB':>10}{'rows':>11}", flush=True)
    results: dict = {"storage_option": storage, "files": []}
    for i, gib in enumerate(sorted(sizes_gib)):
        rows = int(gib * GIB) // (D * 4)
        path = tmp / f"rows{rows}.npy"
        start = time.perf_counter()
        write_rows(path, rows, base, flips, seed=i)
        size = path.stat().st_size / GIB
        print(f"  wrote {path.name}: {size:.2f} GiB, {rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)
        args = ["--model", "vae", "--data", str(path), "--hidden", "400", "--latent-dim", "20", "--epochs", "1",
                "--valid-fraction", "0.01", "--test-fraction", "0.01", "--normalize", normalize]  # fmt: skip
        modes = ["stream"] if storage else ["default"]
        if i == 0:  # the smallest file: the in-memory path too, alternating with streaming
            modes = ["memory", "stream"] if storage else ["default"]
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(rounds if len(modes) > 1 else 1):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                flag = [] if mode == "default" else ["--storage", mode]
                res = train([*args, *flag], tmp / "run")
                runs[mode].append(res)
                print(row(f"{mode} ({size:.2f} GiB)", res, f"{size:>10.2f}{rows:>11,}"), flush=True)
        path.unlink()
        results["files"].append({"gib": size, "rows": rows, "runs": runs})
    if storage:
        _stream_verdicts(results)
    return results


def _median(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if not r["returncode"] and key in r]
    return statistics.median(values) if values else float("nan")


def _stream_verdicts(results: dict) -> None:
    files = results["files"]
    first, last = files[0], files[-1]
    ratio = _median(first["runs"]["stream"], "samples_per_s") / _median(first["runs"]["memory"], "samples_per_s")
    results["stream_over_memory_throughput"] = ratio
    verdict = "within" if ratio >= 0.8 else "NOT within"
    print(f"\nthroughput, {first['gib']:.2f} GiB file, stream / memory (medians): {ratio:.2f} ({verdict} 20%)")
    if len(files) > 1:
        growth = max(r["peak_rss_gib"] for r in last["runs"]["stream"]) - max(
            r["peak_rss_gib"] for r in first["runs"]["stream"]
        )
        anon = max(r["peak_anon_gib"] for r in last["runs"]["stream"]) - max(
            r["peak_anon_gib"] for r in first["runs"]["stream"]
        )
        data = last["gib"] - first["gib"]
        results["stream_rss_growth_gib"], results["stream_anon_growth_gib"] = growth, anon
        print(f"RSS flatness, stream {last['gib']:.2f} GiB file minus {first['gib']:.2f} GiB file: peak RSS "
              f"{growth:+.2f} GiB, peak anon {anon:+.2f} GiB, against {data:.2f} GiB more data")  # fmt: skip


def float_list(text: str) -> list[float]:
    return sorted({float(v) for v in text.replace(" ", "").split(",") if v})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-gib", type=float_list, default=[0.5, 1.0, 2.2], help="sizes of the .npy files")
    parser.add_argument("--subset", type=int, default=5000, help="MNIST images for conv ae and vq-vae (0: all)")
    parser.add_argument("--compare-rounds", type=int, default=4, help="memory/stream pairs on the smallest file")
    parser.add_argument("--flips", type=int, default=8, help="pixels flipped per row in the streamed files")
    parser.add_argument("--normalize", default="none", help="--normalize of the streamed runs (none: stay in [0, 1])")
    parser.add_argument("--skip-models", action="store_true", help="skip part 1")
    parser.add_argument("--skip-stream", action="store_true", help="skip part 2")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    begin = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="aekit-bench-memory-") as tmp:
        if not args.skip_models:
            results["models"] = bench_models(Path(tmp), args.subset)
        if not args.skip_stream:
            results["stream"] = bench_stream(
                Path(tmp), args.stream_gib, args.compare_rounds, args.flips, args.normalize
            )
    results["total_seconds"] = time.perf_counter() - begin
    print(f"\nGiB throughout; peak RSS exact (kernel high-water mark), anon/file sampled every {POLL_SECONDS} s; "
          f"total run time {results['total_seconds']:.0f} s")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
