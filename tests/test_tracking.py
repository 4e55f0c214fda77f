"""Training callbacks and experiment tracking: the hooks fire when they say, a callback can stop
training, loggers close on errors; TensorBoard's and MLflow's own readers get back what was logged,
and a resumed run keeps logging to the same place."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import aekit
from aekit.cli import main
from aekit.errors import ConfigError, MissingDependencyError, RunInterrupted
from aekit.runs.layout import read_metrics
from aekit.runs.tracking import resolve_tracking_uri
from aekit.training.callbacks import Callback

QUICK = {"model": "vae", "data": "digits", "hidden": (16,), "latent_dim": 2, "progress": False, "report": False}
TIMINGS = ("samples_per_s", "epoch_seconds")


class Recorder(Callback):
    """Every hook call, in order."""

    def __init__(self):
        self.calls: list[tuple] = []

    def on_train_begin(self, trainer):
        self.calls.append(("begin", trainer.state.epoch))

    def on_step(self, trainer, step, logs):
        self.calls.append(("step", step, dict(logs)))

    def on_epoch_end(self, trainer, record, improved):
        self.calls.append(("epoch", record["epoch"], record["step"], record))

    def on_exception(self, trainer, error):
        self.calls.append(("exception", type(error).__name__))

    def on_train_end(self, trainer, state):
        self.calls.append(("end", state.epoch))

    def of(self, kind):
        return [c[1:] for c in self.calls if c[0] == kind]


def tiny_trainer(log_every, *callbacks):
    torch.manual_seed(0)
    model = aekit.build_model("vae", (1, 8, 8), hidden=(8,), latent_dim=2, likelihood="bernoulli")
    config = aekit.TrainConfig(epochs=3, batch_size=32, progress=False, device="cpu")
    return aekit.Trainer(model, config, log_every=log_every, callbacks=list(callbacks))


def without_timings(records):
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


# --- the callback interface ----------------------------------------------------------------------------


def test_hooks_fire_at_the_step_interval_and_each_epoch():
    x = torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # 4 steps per epoch: 32, 32, 32, 4
    recorder, plain = Recorder(), []
    tiny_trainer(3, recorder, lambda tr, record, improved: plain.append(record["epoch"])).fit(x)
    assert recorder.calls[0] == ("begin", 0) and recorder.calls[-1] == ("end", 3)
    assert [s for s, _ in recorder.of("step")] == [3, 6, 9, 12]
    assert [(e, s) for e, s, _ in recorder.of("epoch")] == [(1, 4), (2, 8), (3, 12)]
    assert plain == [1, 2, 3]  # a plain function is an on_epoch_end hook
    assert all(set(logs) == {"loss", "recon", "kl"} for _, logs in recorder.of("step"))

    # With log_every=1 the logs are each batch's means: weighted by batch size they give the epoch's record.
    each = Recorder()
    tiny_trainer(1, each).fit(x)
    steps = dict(each.of("step"))
    sizes = [32, 32, 32, 4]
    for _, last, record in each.of("epoch"):
        batch_steps = range(last - 3, last + 1)
        mean = sum(steps[s]["loss"] * n for s, n in zip(batch_steps, sizes, strict=True)) / 100
        assert mean == pytest.approx(record["train/loss"], rel=1e-5)
    # ...and a read every 3 steps covers the steps since the last read, or since the epoch began.
    read = dict(recorder.of("step"))
    windows = {3: [1, 2, 3], 6: [5, 6], 9: [9], 12: [10, 11, 12]}  # epochs: steps 1-4, 5-8, 9-12
    for step, covered in windows.items():
        n = [sizes[(s - 1) % 4] for s in covered]
        for term in ("loss", "kl"):
            expected = sum(steps[s][term] * k for s, k in zip(covered, n, strict=True)) / sum(n)
            assert read[step][term] == pytest.approx(expected, rel=1e-5)


def test_a_callback_stops_training_and_the_checkpoint_records_it(tmp_path):
    class StopAtEpoch2(Callback):
        def on_epoch_end(self, trainer, record, improved):
            if record["epoch"] == 2:
                trainer.state.stopped_early = True

    recorder = Recorder()
    run = aekit.train(**QUICK, epochs=10, out=tmp_path / "r", callbacks=[StopAtEpoch2(), recorder])
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["stopped_early"]
    assert [r["epoch"] for r in read_metrics(run.path)] == [1, 2]
    assert recorder.of("end") == [(2,)]
    aekit.resume(run.path, report=False)  # the stop was checkpointed: nothing more to train
    assert len(read_metrics(run.path)) == 2


def test_every_callback_ends_when_training_is_interrupted(tmp_path):
    class Interrupt(Callback):
        def on_epoch_end(self, trainer, record, improved):
            raise KeyboardInterrupt

    class FailingClose(Recorder):
        def on_train_end(self, trainer, state):
            super().on_train_end(trainer, state)
            raise RuntimeError("a logger that cannot close")

    first, failing, last = Recorder(), FailingClose(), Recorder()
    with pytest.raises(RunInterrupted, match="interrupted"):  # the interruption, not the logger's failure
        aekit.train(**QUICK, epochs=3, out=tmp_path / "r", callbacks=[first, Interrupt(), failing, last])
    assert [c[0] for c in first.calls] == ["begin", "epoch", "exception", "end"]
    for recorder in (failing, last):  # after the one that raised: they never saw the epoch, but they end
        assert [c[0] for c in recorder.calls] == ["begin", "exception", "end"]
    assert first.of("exception") == [("KeyboardInterrupt",)]


def test_a_failing_close_is_raised_after_every_callback_closed():
    class FailingClose(Callback):
        def on_train_end(self, trainer, state):
            raise RuntimeError("cannot close")

    after = Recorder()
    with pytest.raises(RuntimeError, match="cannot close"):
        tiny_trainer(25, FailingClose(), after).fit(torch.rand(40, 1, 8, 8))
    assert after.of("end") == [(3,)] and not after.of("exception")


def test_a_callback_must_be_a_callback_or_a_function():
    with pytest.raises(ConfigError, match=r"training\.Callback"):
        tiny_trainer(25, "not a callback").fit(torch.rand(40, 1, 8, 8))


# --- TensorBoard --------------------------------------------------------------------------------------


def events(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--model", "vae", "--hidden", "16", "--latent-dim", "2", "--epochs", "2", "--log-every", "5",
            "--out", str(out), "--no-progress", "--no-report", "--tensorboard"]  # fmt: skip
    assert main(argv) == 0
    records = read_metrics(out)
    tb = events(out / "tensorboard")  # the flag alone: inside the run directory
    tags = set(tb.Tags()["scalars"])
    assert {"train_step/loss", "train_step/recon", "train_step/kl"} <= tags
    assert {k for k in records[0] if k != "step"} <= tags  # train/*, valid/*, lr, samples_per_s, ...
    for name in ("train/loss", "valid/kl", "lr", "samples_per_s"):
        logged = tb.Scalars(name)
        assert [e.step for e in logged] == [r["step"] for r in records]
        assert [e.value for e in logged] == pytest.approx([r[name] for r in records], rel=1e-6)
    total = records[-1]["step"]
    assert [e.step for e in tb.Scalars("train_step/loss")] == list(range(5, total + 1, 5))
    for grid in ("images/reconstructions", "images/samples"):  # a VAE on image data
        images = tb.Images(grid)
        assert [i.step for i in images] == [r["step"] for r in records]
        assert images[0].width > 8 * 8 and images[0].encoded_image_string.startswith(b"\x89PNG")


def test_tensorboard_changes_nothing_that_is_trained(tmp_path):
    plain = aekit.train(**QUICK, epochs=2, out=tmp_path / "plain")
    logged = aekit.train(**QUICK, epochs=2, out=tmp_path / "logged", tensorboard="tb", log_every=3)
    assert without_timings(read_metrics(logged.path)) == without_timings(read_metrics(plain.path))
    assert list((logged.path / "tb").glob("events.out.tfevents.*"))


def test_tensorboard_added_on_resume_and_kept(tmp_path):
    run = aekit.train(**QUICK, epochs=1, out=tmp_path / "r")
    aekit.resume(run.path, epochs=2, tensorboard="tb", report=False)  # epoch 1 is written from metrics.jsonl
    aekit.resume(run.path, epochs=3, report=False)  # config.yaml keeps the directory
    assert aekit.load_run(run.path).config.train.tensorboard == "tb"
    records = read_metrics(run.path)
    logged = events(run.path / "tb").Scalars("train/loss")
    assert [e.step for e in logged] == [r["step"] for r in records]  # each epoch once
    assert [e.value for e in logged] == pytest.approx([r["train/loss"] for r in records], rel=1e-6)
    assert len(list((run.path / "tb").glob("events.out.tfevents.*"))) == 2


def test_overwrite_forgets_the_earlier_runs_events(tmp_path):
    for _ in range(2):
        aekit.train(**QUICK, epochs=1, out=tmp_path / "r", tensorboard="tb", overwrite=True)
    assert len(list((tmp_path / "r" / "tb").glob("events.out.tfevents.*"))) == 1


# --- MLflow -------------------------------------------------------------------------------------------


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A local file store. MLflow 3 refuses file stores unless asked (it prefers a database, which needs
    SQLAlchemy, not part of mlflow-skinny): the variable is MLflow's own opt-in."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "aekit-tests")
    return (tmp_path / "mlruns").as_uri()


def test_mlflow_params_metrics_artifacts_and_resume(tmp_path, mlflow_store):
    from mlflow import MlflowClient

    class InterruptAtEpoch2(Callback):
        def on_epoch_end(self, trainer, record, improved):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    options = {**QUICK, "report": True}
    with pytest.raises(RunInterrupted):
        aekit.train(**options, epochs=3, out=tmp_path / "r", mlflow=mlflow_store, callbacks=[InterruptAtEpoch2()])
    saved = json.loads((tmp_path / "r" / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=mlflow_store)
    assert client.get_run(saved["run_id"]).info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(saved["run_id"], "train/loss")] == [1]

    run = aekit.resume(tmp_path / "r")  # the same MLflow run continues
    assert json.loads((run.path / "mlflow.json").read_text())["run_id"] == saved["run_id"]
    mlflow_run = client.get_run(saved["run_id"])
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name == "r"
    assert client.get_experiment(mlflow_run.info.experiment_id).name == "aekit-tests"
    params = mlflow_run.data.params
    assert params["model.model"] == "vae" and params["model.latent_dim"] == "2" and params["train.epochs"] == "3"
    assert params["model.hidden"] == "[16]" and params["data.data"] == "digits"
    records = read_metrics(run.path)
    for name in ("train/loss", "valid/loss", "lr"):
        history = sorted(client.get_metric_history(saved["run_id"], name), key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2, 3]  # step = epoch, each once
        assert [m.value for m in history] == pytest.approx([r[name] for r in records])
    summary = json.loads((run.path / "summary.json").read_text())
    assert mlflow_run.data.metrics["test/mse"] == pytest.approx(summary["test"]["mse"])
    artifacts = {a.path for a in client.list_artifacts(saved["run_id"])}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "report.html", "model.safetensors", "plots"} <= artifacts
    assert "checkpoint.safetensors" not in artifacts


@pytest.mark.parametrize("content", ["[1, 2]", '{"run_id": 7}', "not json"])
def test_a_hand_edited_mlflow_json_starts_a_new_mlflow_run(tmp_path, mlflow_store, content):
    aekit.train(**QUICK, epochs=1, out=tmp_path / "r", mlflow=mlflow_store)
    (tmp_path / "r" / "mlflow.json").write_text(content)
    run = aekit.resume(tmp_path / "r", epochs=2)
    saved = json.loads((run.path / "mlflow.json").read_text())
    assert saved["run_id"]
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=mlflow_store).get_run(saved["run_id"]).info.status == "FINISHED"


def test_mlflow_uri_of_a_local_store_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("file:./mlruns") == (tmp_path / "mlruns").resolve().as_uri()
    assert resolve_tracking_uri("mlruns") == (tmp_path / "mlruns").resolve().as_uri()
    assert resolve_tracking_uri("sqlite:///m.db") == f"sqlite:///{(tmp_path / 'm.db').resolve()}"
    for kept in ("http://localhost:5000", "sqlite:////abs/m.db", "databricks", (tmp_path / "x").as_uri()):
        assert resolve_tracking_uri(kept) == kept


def test_a_store_mlflow_refuses_is_a_config_error(tmp_path, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    def refuse(tracking_uri):
        raise MlflowException("this store is not accepted")

    monkeypatch.setattr(mlflow, "MlflowClient", refuse)
    with pytest.raises(ConfigError, match="not accepted"):
        aekit.train(**QUICK, epochs=1, out=tmp_path / "r", mlflow="http://localhost:1")
    assert not (tmp_path / "r").exists()


# --- options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module, flags, option",
    [
        ("tensorboard", ["--tensorboard"], {"tensorboard": "tb"}),
        ("mlflow", ["--mlflow", "file:./m"], {"mlflow": "file:./m"}),
    ],
)
def test_a_missing_extra_names_its_install_command_before_training(module, flags, option, tmp_path, monkeypatch,
                                                                   capsys):  # fmt: skip
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the package gives
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), "--no-progress", *flags]) == 2
    assert f"pip install 'aekit[{module}]'" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "m").exists()  # nothing was loaded, trained or written
    with pytest.raises(MissingDependencyError, match=rf"pip install 'aekit\[{module}\]'"):
        aekit.train(**QUICK, epochs=1, out=out, **option)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"log_every": 0}, "log_every must be an integer >= 1"),
        ({"tensorboard": " "}, "tensorboard must be a directory"),
        ({"mlflow": ""}, "mlflow must be a tracking URI"),
    ],
)
def test_bad_tracking_options(options, message):
    with pytest.raises(ConfigError, match=message):
        aekit.RunConfig().replace(**options)


def test_resume_may_change_how_training_is_watched_only(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--out", str(out), "--no-progress", "--no-report"]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--log-every", "3", "--no-report"]) == 0
    assert aekit.load_run(out).config.train.log_every == 3
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "--tensorboard, --mlflow can change" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="cannot change lr"):
        aekit.resume(out, lr=0.1)
