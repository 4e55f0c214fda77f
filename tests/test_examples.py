"""The user guide's promises about examples and commands: every script in examples/ runs as it is, in an
empty folder, and writes only there; every command of the CLI has its section in docs/commands.md."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aekit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
COMMANDS_PAGE = ROOT / "docs" / "commands.md"

# Lines an example must print to show it did its job (regular expressions, matched per line). An example
# not listed here must still print at least one line.
EXPECTED = {
    "train_and_compare_csv.py": [
        r"^No CSV given: wrote breast_cancer\.csv",
        r"^ae +ae +4 +\d",  # a table row per model, with its code size and error
        r"^dae +dae +4 +\d",
        r"^vae +vae +4 +\d",
        r"^PCA \(k = 4\) +pca +4 +\d",
        r"^Lowest test MSE: (ae|dae|vae) \(\d",
    ],
    "custom_networks.py": [
        r"arch 'custom'",
        r"networks\.json records their classes: __main__\.ConvEncoder, __main__\.ConvDecoder",
        r"^Test: -ELBO \d+\.\d+ nats",
        r"^load_run without networks: .*your own networks",
        r"reconstructions identical: True$",
        r"^Sampled 16 new digits of shape \(1, 8, 8\)",
    ],
}


# As conftest.py does in-process: the suite runs two workers on two cores, and two torch threads per example
# beside another worker's would fight over the cores (tiny models then train many times slower).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_in_an_empty_folder(example, tmp_path):
    """Run with its defaults as a user would, from an empty folder, with a fresh home folder: it exits 0,
    prints what it promises, and writes its files in the folder it ran in, not in the home folder."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEKIT_")}  # the default cache: under home
    env |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
            "MPLCONFIGDIR": str(tmp_path / "matplotlib"), **ONE_THREAD}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(example)], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{example.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    assert any(line.strip() for line in lines), f"{example.name} printed nothing"
    for pattern in EXPECTED.get(example.name, []):
        assert any(re.search(pattern, line) for line in lines), f"no line of {example.name} matches {pattern!r}"
    # Libraries keep caches and settings of their own under home (onnxruntime, matplotlib); aekit's data and
    # feature caches, and anything else, belong in the example's folder.
    outside = [f for f in files_under(home) if not f.startswith((".cache/", ".config/")) or "aekit" in f.lower()]
    assert not outside, f"{example.name} wrote outside its folder: {outside[:5]}"


def test_the_csv_example_trains_on_a_given_file(tmp_path):
    """A CSV of one's own, without labels, in another folder: every file goes under --out."""
    import numpy as np

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    table = np.hstack([z, z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(300, 6))])  # 8 columns, rank ~2
    data = tmp_path / "mine.csv"
    np.savetxt(data, table, delimiter=",", header=",".join(f"x{i}" for i in range(8)), comments="")
    out, work = tmp_path / "results", tmp_path / "work"
    work.mkdir()
    args = [str(data), "--out", str(out), "--epochs", "15", "--latent-dim", "2"]
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_and_compare_csv.py"), *args], cwd=work,
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "No CSV given" not in proc.stdout
    assert re.search(r"^PCA \(k = 2\) +pca +2 +\d", proc.stdout, re.M), proc.stdout
    assert "no probe" in proc.stdout  # the data has no labels, and the notes say what that leaves out
    assert {"compare.md", "compare.csv"} <= set(files_under(out))
    assert (out / "runs" / "vae" / "model.safetensors").is_file()
    assert not files_under(work)


def cli_commands() -> list[str]:
    parser = build_parser([])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def command_sections() -> dict[str, str]:
    """docs/commands.md's sections headed by a command, e.g. ### `aekit train`: {command: section text}."""
    page = COMMANDS_PAGE.read_text()
    heads = list(re.finditer(r"^#{2,4} `aekit ([a-z][a-z-]*)`\s*$", page, re.M))
    ends = [h.start() for h in heads[1:]] + [len(page)]
    return {h.group(1): page[h.end() : end] for h, end in zip(heads, ends, strict=True)}


def test_every_command_is_documented_with_an_example():
    """A new command fails this test until docs/commands.md has a section for it with an example line."""
    sections = command_sections()
    commands = cli_commands()
    assert "train" in commands and "compare" in commands  # the parser was read
    missing = [c for c in commands if c not in sections]
    assert not missing, f"docs/commands.md has no section '### `aekit NAME`' for: {', '.join(missing)}"
    for command in commands:
        text = sections[command]
        assert re.search(rf"^aekit {command}(?![\w-])|`aekit {command} [^`]+`", text, re.M), (
            f"the section of 'aekit {command}' in docs/commands.md has no example line"
        )
        assert len(re.sub(r"```.*?```", "", text, flags=re.S).split()) >= 8, (
            f"the section of 'aekit {command}' in docs/commands.md does not say what the command is for"
        )
