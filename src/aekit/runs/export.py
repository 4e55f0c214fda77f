"""Export a run's model for serving (``aekit export``): ONNX graphs with a dynamic batch axis, and a JSON
that describes them.

What is exported the model declares (:meth:`aekit.Model.export_spec`): for the autoencoders an encoder
(data to the code h, to a VAE posterior's mean and log-variance, or to a VQ-VAE's code indices) and a
decoder (codes, or code indices, to the likelihood's mean); for the latent EBM, whose codes come from
inference rather than a forward pass, the decoder alone.

Two rules hold for every graph, and the export checks both:

- no random op: sampling draws its noise outside the graph (``z = mean + exp(logvar / 2) * eps``);
- data in its own units: the run's standardisation is applied inside the encoder and undone inside the
  decoder, so raw data goes in and raw units come out (onnx.json says so and records the statistics).

Each graph is then run in ONNX Runtime at two batch sizes and compared with PyTorch; the differences
are recorded in onnx.json.

The graphs come from ``torch.onnx.export(dynamo=True)`` (torch.export, then onnxscript): it gives correct
graphs with a symbolic batch axis for the MLP, conv and VQ-VAE networks alike. The older TorchScript
exporter is deprecated, and it writes a VQ-VAE decoder that ONNX Runtime refuses to load (an invalid
Transpose for the codebook lookup's ``movedim``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aekit.errors import CapabilityError, ConfigError, MissingDependencyError, check_choice
from aekit.fsutil import atomic_path, atomic_write_text
from aekit.models.base import GraphSpec, device_of
from aekit.parts.latents import TensorSpec
from aekit.runs.run import Run, load_run

FORMATS = ("onnx",)  # --format choices; each has an export_<format> function below
DESCRIPTION = "onnx.json"
BATCH_AXIS = "batch"
CHECK_BATCH_SIZES = (1, 7)
EXAMPLE_BATCH = 3  # the batch traced; not 0 or 1, which torch.export would specialise
# Ops that draw random numbers: an exported graph holds none of them.
RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
# The self-check fails an export only for gross disagreement: float32 kernels may sum in another order,
# and a VQ-VAE code at a near tie between two codebook vectors may flip.
FLOAT_CHECK = 1e-3  # largest difference allowed, relative to max(1, the largest |value|)
INDEX_CHECK = 0.01  # largest fraction of integer outputs allowed to differ
INSTALL = "pip install 'aekit[onnx]'"


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote: the folder, each graph's file by graph name, and onnx.json's content."""

    out: Path
    files: dict[str, Path]
    description: dict[str, Any]

    @property
    def notes(self) -> list[str]:
        """What the user should know, e.g. why a graph is missing (the latent EBM has no encoder graph)."""
        return self.description["notes"]


def export_run(run: Run | str | Path, out: str | Path, format: str = "onnx") -> OnnxExport:
    """Export ``run`` (a :class:`Run` or its directory) in ``format`` into the folder ``out``."""
    check_choice("format", format, FORMATS)
    return export_onnx(run, out)


def export_onnx(run: Run | str | Path, out: str | Path) -> OnnxExport:
    """Write ``encoder.onnx`` and ``decoder.onnx`` (the graphs the model declares, each with a dynamic batch
    axis) and ``onnx.json`` (their inputs and outputs, the normalisation, notes and the parity check) into
    the folder ``out``.

    The graphs take and return data in its own units (the run's standardisation is inside them) and hold
    no random op. A model that declares no graphs raises :class:`~aekit.errors.CapabilityError`; without
    the ``onnx`` extra this raises :class:`~aekit.errors.MissingDependencyError`.
    """
    onnx, ort = require_onnx()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out '{out}' is a file, not a folder. Choose a folder for encoder.onnx, decoder.onnx and {DESCRIPTION}."
        )
    if not isinstance(run, Run):
        run = load_run(run)
    model = run.model if device_of(run.model).type == "cpu" else copy.deepcopy(run.model).cpu()
    spec = model.export_spec()
    normalization = run.data_info.get("normalization") or {}
    data_range = model.likelihood.value_range
    was_training = model.training
    model.eval()
    try:
        protos, checks = {}, {}
        for name, graph in spec.graphs.items():
            module = InDataUnits(graph, normalization).eval()
            protos[name] = export_graph(module, graph, name, onnx)
            checks[name] = check_graph(module, graph, name, protos[name], ort, normalization, data_range)
    finally:
        model.train(was_training)
    description = {
        "format": 1,
        "model": model.name,
        "run": str(run.path),
        "batch_axis": BATCH_AXIS,
        "opset": max(o.version for o in next(iter(protos.values())).opset_import if o.domain in ("", "ai.onnx")),
        "exporter": f"torch {torch.__version__}, torch.onnx.export(dynamo=True)",
        "normalization": normalization_note(normalization),
        "graphs": {
            name: {
                "file": f"{name}.onnx",
                "description": graph.description,
                "inputs": [describe(s, data_range) for s in graph.inputs],
                "outputs": [describe(s, data_range) for s in graph.outputs],
            }
            for name, graph in spec.graphs.items()
        },
        "notes": list(spec.notes),
        "check": {"runtime": f"onnxruntime {ort.__version__}", "batch_sizes": list(CHECK_BATCH_SIZES), **checks},
    }
    files = {name: out / f"{name}.onnx" for name in protos}
    remove_stale_graphs(out, set(files.values()))
    for name, proto in protos.items():
        with atomic_path(files[name]) as tmp:
            onnx.save_model(proto, tmp)
    atomic_write_text(out / DESCRIPTION, json.dumps(description, indent=2) + "\n")
    return OnnxExport(out, files, description)


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules (and a check for ``onnxscript``, which torch.onnx needs)."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  # torch.onnx.export(dynamo=True) translates with it
    except ImportError as err:
        raise MissingDependencyError(
            f"ONNX export needs the optional packages onnx, onnxscript and onnxruntime ({err.name or err} is "
            f"missing): {INSTALL}"
        ) from None
    return onnx, onnxruntime


class InDataUnits(nn.Module):
    """A declared graph with the run's standardisation around it: its ``data`` inputs are standardised,
    its ``data`` outputs mapped back, so the exported graph works in the data's own units."""

    def __init__(self, graph: GraphSpec, normalization: dict[str, Any]):
        super().__init__()
        self.inner = graph.module
        self.data_in = [s.role == "data" for s in graph.inputs]
        self.data_out = [s.role == "data" for s in graph.outputs]
        self.scaled = bool(normalization)
        if self.scaled:
            self.register_buffer("mean", torch.tensor(normalization["mean"], dtype=torch.float32))
            self.register_buffer("std", torch.tensor(normalization["std"], dtype=torch.float32))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.scaled:
            inputs = tuple((x - self.mean) / self.std if d else x for x, d in zip(inputs, self.data_in, strict=True))
        outputs = self.inner(*inputs)
        if self.scaled:
            outputs = tuple(o * self.std + self.mean if d else o for o, d in zip(outputs, self.data_out, strict=True))
        return outputs


def export_graph(module: nn.Module, graph: GraphSpec, name: str, onnx: Any) -> Any:
    """The ONNX model of ``module``, traced at a small batch with a symbolic batch axis; checked by
    onnx's checker and for random ops."""
    batch = torch.export.Dim(BATCH_AXIS)
    inputs = example_inputs(graph.inputs, EXAMPLE_BATCH, {}, None, torch.Generator().manual_seed(0))
    try:
        with quiet():
            program = torch.onnx.export(
                module, inputs, None, dynamo=True, input_names=[s.name for s in graph.inputs],
                output_names=[s.name for s in graph.outputs], dynamic_shapes=(tuple({0: batch} for _ in inputs),),
                verbose=False, report=False,
            )  # fmt: skip
            proto = program.model_proto
            onnx.checker.check_model(proto, full_check=True)
    except Exception as err:  # the exporters raise many kinds; the message names what failed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CapabilityError(
            f"The {name} graph could not be exported to ONNX: {first}. Networks of your own must be traceable by "
            "torch.export (no data-dependent Python control flow)."
        ) from err
    found = random_ops(proto)
    if found:
        raise CapabilityError(
            f"The {name} graph holds random ops ({', '.join(sorted(found))}): an exported graph must be "
            "deterministic, with any noise drawn outside it. The model's export_spec must not sample."
        )
    return proto


def random_ops(proto: Any) -> set[str]:
    """The random ops anywhere in an ONNX model: its graph, nested graphs (If, Loop, Scan) and functions."""
    found: set[str] = set()

    def visit(nodes: Any) -> None:
        for node in nodes:
            if node.op_type in RANDOM_OPS:
                found.add(node.op_type)
            for attr in node.attribute:
                for sub in [attr.g] * attr.HasField("g") + list(attr.graphs):
                    visit(sub.node)

    visit(proto.graph.node)
    for function in proto.functions:
        visit(function.node)
    return found


def check_graph(
    module: nn.Module,
    graph: GraphSpec,
    name: str,
    proto: Any,
    ort: Any,
    normalization: dict[str, Any],
    data_range: tuple[float, float] | None,
) -> dict[str, Any]:
    """Run the graph in ONNX Runtime at :data:`CHECK_BATCH_SIZES` and compare with PyTorch: the largest
    difference of each float output, the mismatches of each integer one."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    found: dict[str, dict[str, float | int]] = {}
    for n in CHECK_BATCH_SIZES:
        inputs = example_inputs(graph.inputs, n, normalization, data_range, generator)
        got = session.run(None, {s.name: x.numpy() for s, x in zip(graph.inputs, inputs, strict=True)})
        with torch.no_grad():
            expected = module(*inputs)
        for spec, ours, ref in zip(graph.outputs, got, expected, strict=True):
            ref = ref.numpy()
            if ours.shape != (n, *spec.shape) or ours.dtype != ref.dtype or ref.shape != ours.shape:
                raise CapabilityError(
                    f"The {name} graph's output '{spec.name}' is {ours.dtype} {ours.shape} for a batch of {n}, but "
                    f"the model declares {spec.dtype} {(n, *spec.shape)} (PyTorch gives {ref.dtype} {ref.shape})."
                )
            entry = found.setdefault(spec.name, {})
            if spec.dtype.is_floating_point:
                diff = float(np.abs(ours.astype(np.float64) - ref).max(initial=0.0))
                entry["max_abs_diff"] = max(entry.get("max_abs_diff", 0.0), diff)
                bad = diff > FLOAT_CHECK * max(1.0, float(np.abs(ref).max(initial=0.0)))
            else:
                entry["mismatched"] = int(entry.get("mismatched", 0)) + int((ours != ref).sum())
                entry["of"] = int(entry.get("of", 0)) + ref.size
                bad = entry["mismatched"] > INDEX_CHECK * entry["of"]
            if bad:
                raise CapabilityError(
                    f"The exported {name} graph does not reproduce PyTorch's '{spec.name}' ({entry}); the ONNX "
                    "export of one of its operations is wrong. Please report it with the model's configuration."
                )
    return found


def example_inputs(
    specs: tuple[TensorSpec, ...],
    n: int,
    normalization: dict[str, Any],
    data_range: tuple[float, float] | None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """A batch of ``n`` inputs that fit each spec: integers in their range, data in its range and units."""
    inputs = []
    for spec in specs:
        shape = (n, *spec.shape)
        if not spec.dtype.is_floating_point:
            lo, hi = spec.range or (0, 1)
            x = torch.randint(int(lo), int(hi) + 1, shape, generator=generator, dtype=spec.dtype)
        elif spec.role == "data" and data_range is not None:
            lo, hi = data_range
            x = lo + (hi - lo) * torch.rand(shape, generator=generator)
        else:
            x = torch.randn(shape, generator=generator)
            if spec.role == "data" and normalization:
                x = x * torch.tensor(normalization["std"]) + torch.tensor(normalization["mean"])
        inputs.append(x.to(spec.dtype))
    return tuple(inputs)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporter's progress lines, warnings and log records (its errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [log.level for log in loggers]
    sink = io.StringIO()
    try:
        for log in loggers:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def describe(spec: TensorSpec, data_range: tuple[float, float] | None) -> dict[str, Any]:
    """One input or output as onnx.json gives it."""
    value_range = spec.range if spec.range is not None else (data_range if spec.role == "data" else None)
    return {
        "name": spec.name,
        "shape": [BATCH_AXIS, *spec.shape],
        "dtype": str(spec.dtype).removeprefix("torch."),
        "role": spec.role,
        "range": None if value_range is None else list(value_range),
        "description": spec.description,
    }


def normalization_note(normalization: dict[str, Any]) -> dict[str, Any]:
    """onnx.json's account of the data's units: the graphs take and return data in its own units."""
    if normalization:
        how = (
            "The graphs take and return data in its own units: the run's standardisation (x - mean) / std is "
            "applied inside the encoder, and x * std + mean inside the decoder. Pass raw data; do not standardise it."
        )
        return {"inside_graphs": True, "mean": normalization["mean"], "std": normalization["std"], "how": how}
    how = "The run's data was not standardised: the graphs take and return data in its own units, as loaded."
    return {"inside_graphs": True, "mean": None, "std": None, "how": how}


def remove_stale_graphs(out: Path, keep: set[Path]) -> None:
    """Remove the graphs of an earlier export into ``out`` that this one does not write (a latent EBM's
    export replacing an autoencoder's leaves no encoder.onnx behind); nothing else is touched."""
    try:
        earlier = json.loads((out / DESCRIPTION).read_text())
        files = [out / Path(g["file"]).name for g in earlier["graphs"].values()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    for file in files:
        if file not in keep and file.suffix == ".onnx":
            file.unlink(missing_ok=True)


def tensor_line(spec: dict[str, Any]) -> str:
    """``name (batch, 1, 8, 8) float32``: one input or output of onnx.json, as the CLI prints it."""
    return f"{spec['name']} ({', '.join(map(str, spec['shape']))}) {spec['dtype']}"


__all__ = ["FORMATS", "OnnxExport", "export_onnx", "export_run", "random_ops"]
