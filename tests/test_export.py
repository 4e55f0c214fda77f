"""aekit export --format onnx: for every family that exports, graphs that ONNX Runtime runs at any batch size
and that match PyTorch (the run's own encode and decode), with no random op, in the data's own units, and
described by onnx.json; the latent EBM's decoder alone; the command's exit codes and clear errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.config import RunConfig
from aekit.models.base import ExportSpec, GraphSpec, MethodGraph, Model, mean_spec
from aekit.parts import Latent
from aekit.parts.latents import TensorSpec
from aekit.runs.export import export_onnx, random_ops
from aekit.runs.run import Run

TINY = {"epochs": 1, "progress": False, "report": False}
FAMILIES = {  # tiny runs: enough to give every graph real, trained weights
    "ae": {"model": "ae", "latent_dim": 3, "hidden": (16,)},  # tabular data, standardised by the run
    "vae": {"model": "vae", "latent_dim": 4, "hidden": (32,)},
    "conv-vae": {"model": "vae", "arch": "conv", "latent_dim": 4, "hidden": (8, 16)},
    "vq-vae": {"model": "vq-vae", "channels": 16, "res_blocks": 1, "num_codes": 16, "code_dim": 8, "downsample": 1},
    "latent-ebm": {"model": "latent-ebm", "latent_dim": 4, "hidden": (32,)},
    "cvae": {"model": "vae", "latent_dim": 4, "hidden": (32,), "condition_on": "labels"},
}
# Largest |ONNX Runtime - PyTorch| allowed. MLPs: 1e-5 (the observed is ~1e-7). Conv nets: 1e-4, because
# ONNX Runtime's convolutions (MLAS, blocked layouts) sum each output over the 3x3xC window in another order
# than PyTorch's, and the float32 rounding of that order grows with the window and the depth; the observed
# is still ~1e-7 on 8x8 digits, and 1e-4 leaves room for wider nets and other CPUs. Code indices: exact.
TOLERANCE = {"conv-vae": 1e-4, "vq-vae": 1e-4}
MLP_TOLERANCE = 1e-5
DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{family: (run, export folder, CLI output or None)}: the AE and the latent EBM go through the CLI."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    table = root / "table.npy"  # tabular data far from standard units, so the run standardises it
    np.save(table, (5.0 + 3.0 * rng.standard_normal((240, 6))).astype(np.float32))
    found = {}
    for family, options in FAMILIES.items():
        data = str(table) if family == "ae" else "digits"
        run = aekit.train(data=data, out=root / family, **options, **TINY)
        out = root / f"{family}-onnx"
        printed = None
        if family == "latent-ebm":  # over an earlier AE export: its encoder.onnx must not stay behind
            shutil.copytree(root / "ae-onnx", out)
        if family in ("ae", "latent-ebm"):
            with contextlib.redirect_stdout(io.StringIO()) as text:
                assert main(["export", str(run.path), "--format", "onnx", "--out", str(out)]) == 0
            printed = text.getvalue()
        else:
            export_onnx(run, out)
        found[family] = (run, out, printed)
    return found


def description(out: Path) -> dict:
    return json.loads((out / "onnx.json").read_text())


def sessions(out: Path) -> dict[str, ort.InferenceSession]:
    graphs = description(out)["graphs"]
    return {name: ort.InferenceSession(str(out / g["file"]), providers=["CPUExecutionProvider"])
            for name, g in graphs.items()}  # fmt: skip


def raw_test_data(run: Run, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` test samples in the data's own units, and their labels for a conditional model."""
    data = run.load_data()
    y = data.test_labels[:n] if run.model.capabilities.conditional else None
    return run.denormalize(data.test[:n]), y


def expected_code(run: Run, name: str, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """PyTorch's value of an encoder output, by the run's own API (x in the data's units)."""
    if name == "indices":
        return run.model.encode_indices(x)
    if name == "logvar":  # digits are not standardised: the model takes x as it is
        with torch.no_grad():
            return 2 * run.model.posterior(x, y).stddev.log()
    return run.encode(x, y)


@pytest.mark.parametrize("family", FAMILIES)
def test_graphs_match_pytorch_at_two_batch_sizes(exported, family):
    run, out, _ = exported[family]
    graphs = sessions(out)
    tolerance = TOLERANCE.get(family, MLP_TOLERANCE)
    x, y = raw_test_data(run, 7)
    labels = {} if y is None else {"y": y.numpy()}
    for n in (1, 7):
        xb, yb, feed_y = x[:n], None if y is None else y[:n], {k: v[:n] for k, v in labels.items()}
        if "encoder" in graphs:
            names = [o.name for o in graphs["encoder"].get_outputs()]
            got = dict(zip(names, graphs["encoder"].run(None, {"x": xb.numpy(), **feed_y}), strict=True))
            for name, value in got.items():
                expected = expected_code(run, name, xb, yb).numpy()
                assert value.shape == expected.shape and value.shape[0] == n
                if name == "indices":
                    np.testing.assert_array_equal(value, expected)
                else:
                    np.testing.assert_allclose(value, expected, rtol=0, atol=tolerance)
            code = got.get("indices", got.get("mean", got.get("code")))
        else:  # the latent EBM: codes from the run's own inference
            code = run.encode(xb).numpy()
        code_name = graphs["decoder"].get_inputs()[0].name
        (decoded,) = graphs["decoder"].run(None, {code_name: code, **feed_y})
        if code_name == "indices":
            expected = run.model.decode_indices(torch.as_tensor(code))
        else:
            expected = run.decode(torch.as_tensor(code), yb)
        assert decoded.shape == (n, *run.model.sample_shape)
        np.testing.assert_allclose(decoded, expected.detach().numpy(), rtol=0, atol=tolerance)


def test_a_vae_encoder_gives_the_posterior_and_draws_no_noise(exported):
    """Two calls on the same data give the same mean and log-variance: the sampling is the user's."""
    run, out, _ = exported["vae"]
    encoder = sessions(out)["encoder"]
    x, _ = raw_test_data(run, 5)
    first, second = encoder.run(None, {"x": x.numpy()}), encoder.run(None, {"x": x.numpy()})
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    _, logvar = first
    assert not np.allclose(logvar, 0)  # a real log-variance, not a placeholder


def all_op_types(model: onnx.ModelProto) -> set[str]:
    """Every op type in a model: its graph, nested graphs and local functions."""
    types: set[str] = set()
    stack = [list(model.graph.node), *(list(f.node) for f in model.functions)]
    while stack:
        for node in stack.pop():
            types.add(node.op_type)
            stack += [list(a.g.node) for a in node.attribute if a.HasField("g")]
            stack += [list(g.node) for a in node.attribute for g in a.graphs]
    return types


@pytest.mark.parametrize("family", FAMILIES)
def test_no_graph_holds_a_random_op(exported, family):
    _, out, _ = exported[family]
    for file in out.glob("*.onnx"):
        ops = all_op_types(onnx.load(str(file)))
        assert ops, file
        random = {op for op in ops if op.startswith("Random") or op in ("Multinomial", "Bernoulli")}
        assert not random, f"{file.name} draws random numbers: {random}"


def test_the_random_op_check_finds_them():
    node = onnx.helper.make_node("RandomNormalLike", ["x"], ["noise"])
    inner = onnx.helper.make_graph([onnx.helper.make_node("RandomUniform", [], ["u"], shape=[1])], "then", [], [])
    branch = onnx.helper.make_node("If", ["c"], ["u"], then_branch=inner, else_branch=inner)
    graph = onnx.helper.make_graph([node, branch], "g", [], [])
    assert random_ops(onnx.helper.make_model(graph)) == {"RandomNormalLike", "RandomUniform"}


def test_export_refuses_a_graph_that_samples(tmp_path):
    """The common VAE export failure, a draw inside the graph, is refused rather than written."""

    class NoisyDecoder(Model):
        sample_shape = (3,)

        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(2, 3)
            self.likelihood = aekit.parts.Gaussian((3,))

        def _noisy(self, z):
            return self.net(z + torch.randn_like(z))

        def export_spec(self):
            code = TensorSpec("code", (2,))
            return ExportSpec({"decoder": GraphSpec(MethodGraph(self, self._noisy), (code,), (mean_spec((3,)),), "")})

    run = Run(tmp_path, RunConfig(), NoisyDecoder(), {})
    with pytest.raises(aekit.CapabilityError, match=r"random ops.*RandomNormalLike"):
        export_onnx(run, tmp_path / "onnx")
    assert not (tmp_path / "onnx" / "decoder.onnx").exists()


def check_tensor(entry: dict, node: ort.NodeArg) -> None:
    assert entry["name"] == node.name
    assert entry["shape"] == node.shape and entry["shape"][0] == "batch"
    assert entry["dtype"] == DTYPES[node.type]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_json_describes_every_graph(exported, family):
    run, out, _ = exported[family]
    info = description(out)
    graphs = sessions(out)
    assert set(info["graphs"]) == set(graphs) == {p.stem for p in out.glob("*.onnx")}
    assert info["batch_axis"] == "batch" and info["model"] == run.config.model.model
    for name, session in graphs.items():
        entry = info["graphs"][name]
        assert len(entry["inputs"]) == len(session.get_inputs())
        for spec, node in zip(entry["inputs"], session.get_inputs(), strict=True):
            check_tensor(spec, node)
        for spec, node in zip(entry["outputs"], session.get_outputs(), strict=True):
            check_tensor(spec, node)
        for spec in entry["inputs"] + entry["outputs"]:
            assert spec["description"]
            if spec["role"] == "labels":
                assert spec["range"] == [0, run.model.num_classes - 1]
            if spec["role"] == "indices":
                assert spec["range"] == [0, run.model.num_codes - 1]
            if spec["role"] == "data":  # Bernoulli data and means in [0, 1]; a Gaussian's: any real value
                assert spec["range"] == ([0.0, 1.0] if run.config.model.likelihood == "bernoulli" else None)
        for checked in info["check"][name].values():
            assert checked.get("max_abs_diff", 0) < TOLERANCE.get(family, MLP_TOLERANCE)
            assert checked.get("mismatched", 0) == 0
    assert info["check"]["batch_sizes"] == [1, 7]


def test_the_run_standardisation_is_inside_the_graphs(exported):
    """Raw data in, raw units out: the AE's tabular data was standardised, and the JSON records how."""
    run, out, _ = exported["ae"]
    norm = description(out)["normalization"]
    assert norm["inside_graphs"] is True
    assert norm["mean"] == run.data_info["normalization"]["mean"] and len(norm["std"]) == 6
    assert "raw data" in norm["how"]
    graphs = sessions(out)
    x, _ = raw_test_data(run, 7)
    assert float(x.mean()) > 3  # really raw: the data's mean is 5
    (code,) = graphs["encoder"].run(None, {"x": x.numpy()})
    (decoded,) = graphs["decoder"].run(None, {"code": code})
    np.testing.assert_allclose(decoded, run.reconstruct(x).numpy(), rtol=0, atol=1e-5)
    assert abs(float(decoded.mean()) - 5) < 2.5  # in the data's units, not standardised ones
    assert description(exported["vae"][1])["normalization"]["mean"] is None  # digits: nothing to undo


def test_the_latent_ebm_exports_its_decoder_alone_and_says_so(exported):
    _, out, printed = exported["latent-ebm"]
    info = description(out)
    assert set(info["graphs"]) == {"decoder"}
    assert not (out / "encoder.onnx").exists()  # the earlier export's encoder was removed
    assert "no feed-forward encoder" in info["notes"][0]
    assert "Note: The latent EBM has no feed-forward encoder" in printed
    assert "decoder.onnx" in printed and "encoder.onnx" not in printed


def test_the_command_reports_what_it_wrote(exported):
    _, out, printed = exported["ae"]
    lines = printed.splitlines()
    assert lines[0] == f"Wrote {out / 'encoder.onnx'}: x (batch, 6) float32 -> code (batch, 3) float32"
    assert lines[1] == f"Wrote {out / 'decoder.onnx'}: code (batch, 3) float32 -> x_mean (batch, 6) float32"
    assert "standardisation is inside the graphs" in lines[2]
    assert lines[3].startswith("Checked in onnxruntime") and "largest difference from PyTorch" in lines[3]
    assert "Note" not in printed and "torch" not in printed.replace("PyTorch", "")  # no exporter chatter


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "{tmp}/missing", "--out", "{tmp}/o"], "does not exist"),
        (["export", "{run}", "--format", "tflite", "--out", "{tmp}/o"], "Unknown format 'tflite'"),
        (["export", "{run}", "--out", "{tmp}/file.txt"], "is a file, not a folder"),
    ],
    ids=["missing-run", "unknown-format", "out-is-a-file"],
)
def test_command_errors_are_clear(exported, tmp_path, capsys, argv, message):
    (tmp_path / "file.txt").write_text("not a folder")
    run_dir = str(exported["vae"][0].path)
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_onnx_runtime_names_the_extra(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(aekit.MissingDependencyError, match=r"pip install 'aekit\[onnx\]'"):
        export_onnx(exported["vae"][0], tmp_path / "o")
    assert main(["export", str(exported["vae"][0].path), "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'aekit[onnx]'" in capsys.readouterr().err


def test_a_model_that_declares_no_graphs_cannot_export(tmp_path):
    class Bare(Model):
        sample_shape = (2,)

    with pytest.raises(aekit.CapabilityError, match="does not declare graphs to export"):
        export_onnx(Run(tmp_path, RunConfig(), Bare(), {}), tmp_path / "o")
    with pytest.raises(aekit.CapabilityError, match="export_outputs"):
        Latent().export_outputs()
