"""Every file aekit reads from a run directory is checked on load: a damaged or hand-edited one is a
CheckpointError naming the file and the field (the command line: exit status 2, one message, no
traceback). And what aekit writes as JSON is strict JSON: a NaN or infinite number is null."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

import aekit
from aekit.cli import main
from aekit.errors import CheckpointError
from aekit.runs.layout import (
    MLFLOW_RUN,
    NETWORKS,
    PRIOR_INFO,
    SUMMARY,
    dumps,
    read_config,
    read_json,
    read_metrics,
    strict_json,
)
from aekit.runs.run import Run
from aekit.training import Trainer
from aekit.training.checkpoint import check_checkpoint, load_tensors, save_tensors

QUICK = {"model": "vae", "data": "digits", "hidden": (16,), "latent_dim": 2, "epochs": 1, "progress": False,
         "report": False}  # fmt: skip


def strict(text: str):
    """Parse ``text`` as strict JSON: the bare words NaN, Infinity and -Infinity are refused."""

    def refuse(word: str):
        raise AssertionError(f"not strict JSON: {word}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One epoch of a small VAE on digits; its epoch record and test metrics hold a NaN each, as a
    diverging diagnostic would, so that the files written show how non-finite numbers are stored."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    evaluate = Run.evaluate

    def with_nan(self, *args, **kwargs):
        return {**evaluate(self, *args, **kwargs), "odd": math.nan}

    def nan_record(trainer, record, improved):
        record["valid/odd"] = math.inf

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Run, "evaluate", with_nan)
        aekit.train(**QUICK, out=out, callbacks=[nan_record])
    return out


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    """A fresh copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def refused(run_dir: Path, capsys, *patterns: str, resume: bool = False) -> None:
    """Loading (or resuming) ``run_dir`` is a CheckpointError whose message holds every pattern, from
    Python and from the command line."""
    with pytest.raises(CheckpointError) as err:
        if resume:
            aekit.resume(run_dir, epochs=2, report=False)
        else:
            aekit.load_run(run_dir)
    for pattern in patterns:
        assert pattern in str(err.value), (pattern, str(err.value))
    argv = ["train", "--resume", str(run_dir), "--epochs", "2", "--no-report"] if resume else ["eval", str(run_dir)]
    capsys.readouterr()
    assert main(argv) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("aekit: error:") and "Traceback" not in stderr
    for pattern in patterns:
        assert pattern in stderr


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def rewrite_safetensors(path: Path, tensors=None, metadata=None) -> None:
    """Write ``path`` again with its tensors and metadata changed by the callables given."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    loaded = load_file(str(path))
    if tensors is not None:
        tensors(loaded)
    if metadata is not None:
        metadata(meta)
    save_file(loaded, str(path), metadata=meta)


def without(text: str, key: str) -> str:
    """The JSON object ``text`` without ``key``."""
    return json.dumps({k: v for k, v in json.loads(text).items() if k != key})


# --- data.json -----------------------------------------------------------------------------------

TABULAR = {"name": "table", "kind": "tabular", "sample_shape": [2], "has_labels": False, "storage": "memory",
           "sizes": {"train": 8, "valid": 1, "test": 1}, "normalization": {"mean": [0.5, -1], "std": [2.0, 1]},
           "feature_names": ["a", "b"]}  # fmt: skip


def test_a_damaged_data_json_is_named_with_its_field(run_dir, capsys):
    edit_json(run_dir / "data.json", lambda info: info.update(sample_shape=[-3]))
    refused(run_dir, capsys, f"The run directory '{run_dir}' is damaged: data.json field 'sample_shape' must be a "
            "non-empty list of positive integers (got [-3]). Restore the file or retrain.")  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_shape", []),
        ("sample_shape", [1, 8.0, 8]),
        ("sample_shape", [1, True, 8]),
        ("sample_shape", "1,8,8"),
        ("name", 7),
        ("kind", "audio"),
        ("normalization", {"mean": [0.0], "std": [1.0]}),  # images are never standardised
        ("normalization", [1, 2]),
        ("has_labels", "yes"),
        ("sizes", {"train": -1, "valid": 0, "test": 0}),
        ("sizes", {"train": 1}),
        ("sizes", [1, 2, 3]),
        ("storage", "disk"),
        ("feature_names", ["a", "b"]),  # an image has no named columns
    ],
)
def test_each_field_of_data_json_is_checked(trained, tmp_path, field, value):
    info = {**json.loads((trained / "data.json").read_text()), field: value}
    (tmp_path / "data.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=re.escape(f"data.json field '{field}' must be")) as err:
        read_json(tmp_path, "data.json")
    assert f"(got {json.dumps(value)})" in str(err.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [({}, None), ({"normalization": {}}, None), ({"normalization": None}, None), ({"feature_names": None}, None),
     ({"normalization": {"mean": [0.0, 0.0], "std": [1.0, 0.0]}}, "normalization"),
     ({"normalization": {"mean": [0.0, math.nan], "std": [1.0, 1.0]}}, "normalization"),
     ({"normalization": {"mean": [0.0], "std": [1.0]}}, "normalization"),
     ({"normalization": {"mean": [0.0, 0.0]}}, "normalization"),
     ({"feature_names": ["a"]}, "feature_names"), ({"feature_names": ["a", 2]}, "feature_names")],
)  # fmt: skip
def test_a_tabular_normalization_and_feature_names_fit_the_features(tmp_path, change, field):
    (tmp_path / "data.json").write_text(json.dumps({**TABULAR, **change}))
    if field is None:
        assert read_json(tmp_path, "data.json") == {**TABULAR, **change}
    else:
        with pytest.raises(CheckpointError, match=f"field '{field}' must be"):
            read_json(tmp_path, "data.json")


@pytest.mark.parametrize(
    ("text", "said"),
    [("", "data.json cannot be read"), ("[1, 2]", "data.json must hold a JSON object, got list")],
)
def test_an_unreadable_data_json_is_refused(run_dir, capsys, text, said):
    (run_dir / "data.json").write_text(text)
    refused(run_dir, capsys, said)


@pytest.mark.parametrize(
    ("text", "said"),
    [("null", "must hold a JSON object, got null"), ('{"name": "digits"}', "data.json lacks the field 'kind'"),
     ("[" * 100_000, "data.json cannot be read"), ("\ud800", "data.json cannot be read")],
)  # fmt: skip
def test_data_json_that_is_no_description_is_refused(tmp_path, text, said):
    (tmp_path / "data.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(CheckpointError, match=re.escape(said)):
        read_json(tmp_path, "data.json")


def test_the_data_json_of_every_0_1_0_run_loads():
    fixtures = Path(__file__).parent / "fixtures" / "runs-0.1.0"
    for run in sorted(fixtures.iterdir()):
        assert read_json(run, "data.json")["sample_shape"]


# --- the other JSON files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [SUMMARY, PRIOR_INFO, NETWORKS, MLFLOW_RUN])
def test_the_other_json_files_must_hold_an_object(tmp_path, name):
    (tmp_path / name).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=re.escape(f"{name} must hold a JSON object, got list")):
        read_json(tmp_path, name)
    (tmp_path / name).write_text("{not json")
    with pytest.raises(CheckpointError, match=re.escape(f"{name} cannot be read")):
        read_json(tmp_path, name)


def test_networks_json_describes_each_network_by_an_object(tmp_path):
    (tmp_path / NETWORKS).write_text('{"encoder": "MyEncoder"}')
    with pytest.raises(CheckpointError, match=re.escape("networks.json field 'encoder'")):
        read_json(tmp_path, NETWORKS)


# --- config.yaml ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda text: "- 1\n- 2\n", "must hold a mapping of keys to values, got list"),
        (lambda text: text.replace("latent_dim: 2", "latent_dim: two"), "'latent_dim' expects an integer, got 'two'"),
        (lambda text: text.replace("  epochs: 1", "  epochs: 1\n  wobble: 3"), "Unknown key 'wobble'"),
    ],
)
def test_a_damaged_config_yaml_is_refused(run_dir, capsys, edit, said):
    config = run_dir / "config.yaml"
    config.write_text(edit(config.read_text()))
    refused(run_dir, capsys, "config.yaml", said)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda text: "", "no model section"),
        (lambda text: "model: vae\n", "no model section"),
        (lambda text: text.replace("  lr: 0.001", "  lr: fast"), "'lr' expects a number"),
        (lambda text: text.replace("  - 16", "  - -4"), "hidden"),
        (lambda text: text.replace("format: 2", "format: two"), "not a version number"),
        (lambda text: text.replace("format: 2", "format: 99"), "newer aekit"),
        (lambda text: "model: [\n", "not valid YAML"),
        (lambda text: text.replace("data:\n", "data: 3\n", 1), "config.yaml"),
    ],
)
def test_each_part_of_config_yaml_is_checked(trained, tmp_path, edit, said):
    (tmp_path / "config.yaml").write_text(edit((trained / "config.yaml").read_text()))
    with pytest.raises(CheckpointError, match=re.escape(said)):
        read_config(tmp_path)


def test_a_config_yaml_that_is_not_text_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(CheckpointError, match=re.escape("config.yaml: it cannot be read")):
        read_config(tmp_path)


# --- model.safetensors ---------------------------------------------------------------------------


def test_non_finite_weights_are_refused(run_dir, capsys):
    name = next(k for k, v in load_file(str(run_dir / "model.safetensors")).items() if v.dim() == 2)

    def poison(tensors):
        tensors[name][0, 0] = math.nan

    rewrite_safetensors(run_dir / "model.safetensors", tensors=poison)
    refused(run_dir, capsys, "model.safetensors", f"holds non-finite values in '{name}'; the run diverged or the "
            "file was edited: retrain, or resume from an intact checkpoint")  # fmt: skip


def test_metadata_that_is_not_json_is_refused(run_dir, capsys):
    rewrite_safetensors(run_dir / "model.safetensors", metadata=lambda meta: meta.update(model="{not json"))
    refused(run_dir, capsys, "model.safetensors", "metadata 'model' is not JSON")


def test_a_truncated_weights_file_is_refused(run_dir, capsys):
    file = run_dir / "model.safetensors"
    file.write_bytes(file.read_bytes()[:-10])
    refused(run_dir, capsys, "model.safetensors", "corrupt or truncated")


@pytest.mark.parametrize("keep", [0, 7, 200])
def test_any_cut_of_a_weights_file_is_refused(trained, tmp_path, keep):
    file = tmp_path / "model.safetensors"
    file.write_bytes((trained / "model.safetensors").read_bytes()[:keep])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_tensors(file)


def test_non_finite_values_are_listed_by_name(tmp_path):
    tensors = {f"w{i}": torch.full((2,), math.inf if i % 2 else 1.0) for i in range(10)}
    tensors["counts"] = torch.zeros(2, dtype=torch.long)
    save_tensors(tmp_path / "x.safetensors", tensors, {})
    with pytest.raises(CheckpointError, match=re.escape("non-finite values in 'w1', 'w3', 'w5' and 2 more;")):
        load_tensors(tmp_path / "x.safetensors")


# --- checkpoint.safetensors (resume) -------------------------------------------------------------


def test_an_intact_run_resumes(run_dir):
    assert aekit.resume(run_dir, epochs=2, report=False).path == run_dir
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2]


@pytest.mark.parametrize(
    ("tensors", "metadata", "said"),
    [
        (lambda t: t.pop("rng.torch"), None, "lacks the tensor 'rng.torch'"),
        (None, lambda m: m.update(trainer=without(m["trainer"], "best_valid")),
         "'trainer' lacks the field 'best_valid'"),
        (lambda t: t["optim.1.exp_avg"].fill_(math.inf), None, "non-finite values in 'optim.1.exp_avg'"),
        (None, lambda m: m.update(trainer="{not json"), "metadata 'trainer' is not JSON"),
    ],
)  # fmt: skip
def test_a_damaged_checkpoint_is_refused_on_resume(run_dir, capsys, tensors, metadata, said):
    rewrite_safetensors(run_dir / "checkpoint.safetensors", tensors=tensors, metadata=metadata)
    refused(run_dir, capsys, "checkpoint.safetensors", said, resume=True)


def test_a_truncated_checkpoint_is_refused_on_resume(run_dir, capsys):
    file = run_dir / "checkpoint.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    refused(run_dir, capsys, "checkpoint.safetensors", "corrupt or truncated", resume=True)


@pytest.fixture(scope="module")
def resuming(trained):
    """The checkpoint of the trained run as read, and a trainer about to resume from it."""
    run = aekit.load_run(trained, weights=None)
    tensors, meta = load_tensors(trained / "checkpoint.safetensors")
    return tensors, meta, Trainer(run.model, run.config.train)


def test_an_intact_checkpoint_passes(resuming):
    tensors, meta, trainer = resuming
    check_checkpoint(tensors, meta, "checkpoint.safetensors", trainer)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda t, m: t.pop("rng.shuffle"), "lacks the tensor 'rng.shuffle'"),
        (lambda t, m: t.update({"rng.torch": t["rng.torch"][:100]}), "the tensor 'rng.torch' must be 5056 bytes"),
        (lambda t, m: t.update({"rng.shuffle": t["rng.shuffle"].float()}), "the tensor 'rng.shuffle' must be"),
        (lambda t, m: t.update({"rng.cuda": torch.zeros(2, 2)}), "the tensor 'rng.cuda' must be"),
        (lambda t, m: t.pop("optim.0.exp_avg"), "'optim.0.exp_avg' must be a floating tensor of shape"),
        (lambda t, m: t.update({"optim.0.exp_avg_sq": torch.zeros(3)}), "'optim.0.exp_avg_sq' must be"),
        (lambda t, m: t.update({"optim.0.exp_avg": t["optim.0.exp_avg"].long()}), "'optim.0.exp_avg' must be"),
        (lambda t, m: t.update({"optim.0.step": torch.zeros(2)}), "'optim.0.step' must be a number"),
        (lambda t, m: t.update({"optim.x.step": torch.zeros(())}), "'optim.x.step' belongs to no parameter"),
        (lambda t, m: t.update({"optim.99.step": torch.zeros(())}), "'optim.99.step' belongs to no parameter"),
        (lambda t, m: t.update({"optim.0": torch.zeros(())}), "'optim.0' belongs to no parameter"),
        (lambda t, m: t.pop(next(k for k in t if k.startswith("model."))), "do not fit this model"),
        (lambda t, m: m["trainer"].pop("epoch"), "'trainer' lacks the field 'epoch'"),
        (lambda t, m: m["trainer"].update(epoch="1"), "'trainer.epoch' must be an integer >= 0, got \"1\""),
        (lambda t, m: m["trainer"].update(step=-1), "'trainer.step' must be an integer >= 0"),
        (lambda t, m: m["trainer"].update(best_epoch=True), "'trainer.best_epoch' must be an integer >= 0"),
        (lambda t, m: m["trainer"].update(stopped_early=0), "'trainer.stopped_early' must be true or false"),
        (lambda t, m: m["trainer"].update(train_seconds=None), "'trainer.train_seconds' must be a finite number"),
        (lambda t, m: m["trainer"].update(best_valid="low"), "'trainer.best_valid' must be a finite number or null"),
        (lambda t, m: m["trainer"].update(extra=1), "'trainer' holds the unknown field 'extra'"),
        (lambda t, m: m.pop("trainer"), "lacks 'trainer'"),
        (lambda t, m: m.update(trainer=[]), "'trainer' (the trainer's counters) must be an object"),
        (lambda t, m: m.pop("optimizer"), "lacks 'optimizer'"),
        (lambda t, m: m.update(optimizer="adam"), "'optimizer' must be an object"),
        (lambda t, m: m["optimizer"].update(param_groups=[]), "'optimizer.param_groups' must be a list of 1"),
        (lambda t, m: m["optimizer"]["param_groups"][0].pop("betas"),
         "'optimizer.param_groups[0].betas' must be like [0.9, 0.999], got null"),
        (lambda t, m: m["optimizer"]["param_groups"][0].update(betas=[0.9]), "'optimizer.param_groups[0].betas'"),
        (lambda t, m: m["optimizer"]["param_groups"][0].update(eps="small"), "'optimizer.param_groups[0].eps'"),
        (lambda t, m: m["optimizer"]["param_groups"][0].update(amsgrad=1), "'optimizer.param_groups[0].amsgrad'"),
        (lambda t, m: m["optimizer"]["param_groups"][0]["params"].pop(), "'optimizer.param_groups[0].params' must"),
        (lambda t, m: m["optimizer"]["param_groups"][0]["params"].__setitem__(1, 0), "a parameter index twice"),
        (lambda t, m: m["optimizer"].update(scalars=[]), "'optimizer.scalars' must be an object of objects"),
        (lambda t, m: m["optimizer"].update(scalars={"x": {"step": 1}}), "'optim.x.step' belongs to no parameter"),
    ],
)  # fmt: skip
def test_each_part_of_a_checkpoint_is_checked(resuming, damage, said):
    tensors, meta, trainer = resuming
    tensors, meta = dict(tensors), json.loads(json.dumps(meta))  # the test's own copies
    damage(tensors, meta)
    with pytest.raises(CheckpointError, match=re.escape(said)) as err:
        check_checkpoint(tensors, meta, "runs/x/checkpoint.safetensors", trainer)
    assert "'runs/x/checkpoint.safetensors'" in str(err.value)


def test_the_checkpoints_of_0_1_0_runs_pass(tmp_path):
    fixtures = Path(__file__).parent / "fixtures" / "runs-0.1.0"
    for name in ("vae", "vq-vae"):
        run = aekit.load_run(fixtures / name, weights=None)
        tensors, meta = load_tensors(fixtures / name / "checkpoint.safetensors")
        check_checkpoint(tensors, meta, "checkpoint.safetensors", Trainer(run.model, run.config.train))


# --- metrics.jsonl -------------------------------------------------------------------------------


def test_a_corrupt_metrics_line_is_refused_on_resume(run_dir, capsys):
    metrics = run_dir / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + "{not json\n")
    refused(run_dir, capsys, "metrics.jsonl line 2 is not JSON", resume=True)


@pytest.mark.parametrize(
    ("line", "said"),
    [("{not json", "line 2 is not JSON"), ("[1, 2]", "line 2 must hold a JSON object"),
     ('{"epoch": "2", "step": 3}', "line 2 field 'epoch' must be an integer"),
     ('{"epoch": 2}', "line 2 field 'step' must be an integer")],
)  # fmt: skip
def test_each_metrics_line_is_checked(trained, tmp_path, line, said):
    (tmp_path / "metrics.jsonl").write_text((trained / "metrics.jsonl").read_text() + line + "\n")
    with pytest.raises(CheckpointError, match=re.escape(f"metrics.jsonl {said}")):
        read_metrics(tmp_path)


# --- nothing is unpickled or executed ------------------------------------------------------------


def test_no_run_file_is_unpickled_or_executed():
    """Run files are JSON, YAML (safe_load), safetensors and text: nothing in aekit unpickles, evaluates or
    imports what a file says. The one unpickler reads MNIST's download, after its hash check, and only arrays."""
    risky = re.compile(r"torch\.load\(|yaml\.(load|unsafe_load|full_load)\(|(?<![\w.])(eval|exec)\(|pickle\.loads?\(|"
                       r"Unpickler|marshal\.|shelve\.")  # fmt: skip
    found = {path.name: risky.findall(path.read_text()) for path in Path(aekit.__file__).parent.rglob("*.py")}
    assert {name for name, hits in found.items() if hits} == {"mnist.py"}, found


# --- strict JSON ---------------------------------------------------------------------------------


def test_strict_json_replaces_non_finite_numbers_and_says_where():
    found: list[str] = []
    value = {"test": {"mse": math.nan, "kl_per_dim": [0.5, math.inf, -math.inf]}, "n": 3, "ok": 1.5}
    assert strict_json(value, found) == {"test": {"mse": None, "kl_per_dim": [0.5, None, None]}, "n": 3, "ok": 1.5}
    assert found == ["test.mse", "test.kl_per_dim[1]", "test.kl_per_dim[2]"]
    assert strict(dumps(value)) == strict_json(value)


def test_the_files_a_run_writes_are_strict_json(trained):
    summary = strict((trained / "summary.json").read_text())
    assert summary["test"]["odd"] is None and summary["test"]["mse"] > 0
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert strict(lines[0])["valid/odd"] is None
    strict((trained / "data.json").read_text())
    assert math.isnan(read_metrics(trained)[0]["valid/odd"])  # null reads back as NaN


def test_json_output_is_strict_and_names_the_non_finite_keys(trained, capsys, monkeypatch):
    monkeypatch.setattr(Run, "evaluate", lambda self, *a, **k: {"mse": math.nan, "kl_per_dim": [0.1, math.inf], "n": 3})
    capsys.readouterr()
    assert main(["eval", str(trained), "--json"]) == 0
    printed = strict(capsys.readouterr().out)
    assert printed == {"mse": None, "kl_per_dim": [0.1, None], "n": 3, "non_finite": ["mse", "kl_per_dim[1]"]}


def test_json_output_without_non_finite_numbers_has_no_note(trained, capsys):
    capsys.readouterr()
    assert main(["eval", str(trained), "--json", "--iw-samples", "0"]) == 0
    printed = strict(capsys.readouterr().out)
    assert "non_finite" not in printed and printed["mse"] > 0


def test_every_file_written_gets_the_permissions_of_a_plain_open(tmp_path):
    import os
    import stat

    from aekit.fsutil import atomic_write_text
    from aekit.training.checkpoint import save_tensors

    umask = os.umask(0o022)
    try:
        save_tensors(tmp_path / "w.safetensors", {"a": torch.zeros(2)}, {})  # safetensors writes its own file
        atomic_write_text(tmp_path / "t.json", "{}")
    finally:
        os.umask(umask)
    for name in ("w.safetensors", "t.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name  # not mkstemp's owner-only 0600
