"""The package's layout shows its design (docs/architecture.md): layers that import only downwards, no
import cycles (imports inside functions and under TYPE_CHECKING count), no private names imported from
another module, and no model probed for what it is outside the model package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "aekit"

# Bottom to top: a module may import from its own layer and the ones before it.
LAYERS = [
    {"aekit.errors", "aekit.registry", "aekit.fsutil"},
    {"aekit.config"},
    {"aekit.data"},
    {"aekit.parts"},
    {"aekit.models"},
    {"aekit.training"},
    {"aekit.evaluation"},
    {"aekit.figures"},
    {"aekit.runs"},
    {"aekit.analyses"},
    {"aekit.reproduce"},
    {
        "aekit.cli",
        "aekit",
        "aekit.__main__",
        "aekit.console",
        "aekit.sklearn",
    },  # the package's __init__ exports the public API; the CLI reads its version
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, known: set[str]) -> list[tuple[str, str]]:
    """``(module, imported name)`` for every aekit import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("aekit")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aekit"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub, "") if sub in known else (node.module, alias.name))
    return found


def layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if module in names or any(module.startswith(n + ".") for n in names if n != "aekit"):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and to docs/architecture.md")


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {target for target, _ in imports(p, set(mods))} - {m} for m, p in mods.items()}


def test_layers_import_only_downwards():
    wrong = [
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, targets in graph().items()
        for t in targets
        if layer(t) > layer(m)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt in edges and not state.get(nxt):
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_no_private_names_imported_from_another_module():
    mods = modules()
    private = [
        f"{m} imports {name} from {target}"
        for m, path in mods.items()
        for target, name in imports(path, set(mods))
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private, "\n".join(private)


def test_no_model_is_probed_outside_the_model_package():
    probe = re.compile(r"\b(hasattr|getattr)\(\s*(getattr\(\s*)?(self\.)?(run\.)?model\b|isinstance\([^)]*\b(VQVAE|"
                       r"LatentEBM|Autoencoder)\b")  # fmt: skip
    found = [
        f"{path.relative_to(SRC)}:{i}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if "models" not in path.relative_to(PACKAGE).parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if probe.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_architecture_page_names_every_module():
    page = (SRC.parent / "docs" / "architecture.md").read_text()
    missing = [p.name for p in PACKAGE.rglob("*.py") if p.stem not in ("__init__", "__main__") and p.name not in page]
    assert not missing, f"docs/architecture.md does not mention {missing}"
