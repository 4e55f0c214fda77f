"""``aekit export``: a run's model as graphs for serving (ONNX), with a JSON that describes them."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.runs.export import DESCRIPTION, FORMATS, OnnxExport, export_run, tensor_line


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="Export a run's encoder and decoder for serving: ONNX graphs with a dynamic batch axis."
    )
    p.set_defaults(_parser=p, handler=cmd_export)
    p.add_argument("run_dir")
    p.add_argument("--format", default="onnx", help=f"one of {', '.join(FORMATS)} (default: onnx)")
    p.add_argument("--out", required=True, help=f"folder for encoder.onnx, decoder.onnx and {DESCRIPTION}")


def cmd_export(args: argparse.Namespace) -> int:
    result = export_run(args.run_dir, args.out, format=args.format)
    graphs = result.description["graphs"]
    for name, file in result.files.items():
        inputs = ", ".join(map(tensor_line, graphs[name]["inputs"]))
        outputs = ", ".join(map(tensor_line, graphs[name]["outputs"]))
        print(f"Wrote {file}: {inputs} -> {outputs}")
    units = "data in its own units"
    if result.description["normalization"]["mean"] is not None:
        units = "the run's standardisation is inside the graphs: pass raw data"
    print(f"Wrote {result.out / DESCRIPTION}: names, shapes, value ranges; {units}")
    print(check_line(result))
    for note in result.notes:
        print(f"Note: {note}")
    return 0


def check_line(result: OnnxExport) -> str:
    """One line on how the graphs compared with PyTorch in ONNX Runtime."""
    check = result.description["check"]
    outputs = [entry for name in result.files for entry in check[name].values()]
    line = f"Checked in {check['runtime']} at batch sizes {' and '.join(map(str, check['batch_sizes']))}: "
    parts = []
    diffs = [e["max_abs_diff"] for e in outputs if "max_abs_diff" in e]
    if diffs:
        parts.append(f"largest difference from PyTorch {max(diffs):.2g}")
    if any("mismatched" in e for e in outputs):
        mismatched = sum(e.get("mismatched", 0) for e in outputs)
        total = sum(e.get("of", 0) for e in outputs)
        parts.append("code indices identical" if not mismatched else f"{mismatched} of {total} code indices differ")
    return line + ", ".join(parts)
