"""``aekit reproduce``: every reproduction's smoke tier runs end to end and writes its table beside the
paper's numbers; a second call reuses the finished runs. MNIST is a small stand-in here (random images
in the cache), so the path is checked, not the numbers (docs/reproductions.md has those)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aekit.cli import main
from aekit.reproduce import REPRODUCTIONS


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        arrays[f"x_{split}"] = (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32)
        arrays[f"y_{split}"] = rng.integers(0, 10, n).astype(np.int64)
    (tmp_path / "cache").mkdir()
    np.savez(tmp_path / "cache" / "mnist.npz", **arrays)
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_list_names_every_reproduction(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("hinton2006", "burda2016", "higgins2017", "vandenoord2017"))


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_the_smoke_tier_writes_its_table_and_reuses_its_runs(name, tmp_path, small_mnist, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", name, "--out", str(out), "--no-progress"]) == 0
    folder = out / name / "smoke"
    table = json.loads((folder / "table.json").read_text())
    assert table["tier"] == "smoke" and table["machine"]["cores"] >= 1 and table["seconds"] > 0
    assert table["rows"] and all(math.isfinite(r["measured"]) for r in table["rows"])
    md = (folder / "table.md").read_text()
    assert all(r["what"] in md for r in table["rows"]) and "| measured | paper |" in md
    assert "table.md" in capsys.readouterr().out
    first = {(r["what"], r["metric"]): r["measured"] for r in table["rows"]}
    weights = {p: p.stat().st_mtime_ns for p in folder.rglob("model.safetensors")}
    assert weights
    assert main(["reproduce", name, "--out", str(out), "--no-progress"]) == 0  # reuses the finished runs
    again = json.loads((folder / "table.json").read_text())
    assert {(r["what"], r["metric"]): r["measured"] for r in again["rows"]} == pytest.approx(first)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("model.safetensors")} == weights  # not retrained


def test_the_papers_numbers_stand_beside_ours(tmp_path, small_mnist):
    assert main(["reproduce", "hinton2006", "--out", str(tmp_path), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "hinton2006" / "smoke" / "table.json").read_text())["rows"]
    assert [r["paper"] for r in rows] == [3.00, 13.87]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "hinton"], "Unknown reproduction 'hinton'"),
        (["reproduce", "hinton2006", "--tier", "huge"], "Unknown tier 'huge'"),
        (["reproduce"], "Name a reproduction"),
    ],
)
def test_bad_names_are_clear_errors(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err
