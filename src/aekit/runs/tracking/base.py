"""What the run's loggers share: their base class, the check for their optional packages, and where
they write (a TensorBoard directory inside the run directory; an MLflow store named by an absolute path)."""

from __future__ import annotations

import importlib
import urllib.parse
from pathlib import Path
from typing import Any

from aekit.errors import MissingDependencyError
from aekit.training.callbacks import Callback

# module to import -> (the extra that installs it, the option that needs it)
EXTRAS = {"tensorboard": ("tensorboard", "--tensorboard"), "mlflow": ("mlflow", "--mlflow")}
NAMED_STORES = ("databricks", "databricks-uc", "uc")  # tracking URIs MLflow reads as names, not paths


class RunTracker(Callback):
    """A logger of a run: a training callback that also sees the finished run directory."""

    def on_run_end(self, path: Path, summary: dict[str, Any]) -> None:
        """After training, once summary.json and the report are written (not called when training failed)."""


def require(module: str) -> Any:
    """Import the optional package ``module`` of :data:`EXTRAS`, or raise MissingDependencyError naming its
    install command."""
    extra, option = EXTRAS[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{option} needs the optional package {module}: pip install 'aekit[{extra}]'. Or train without {option}."
        ) from None


def tensorboard_dir(run_dir: Path, directory: str) -> Path:
    """The TensorBoard directory of a run: ``directory``, taken relative to the run directory."""
    return Path(run_dir) / Path(directory).expanduser()  # an absolute path stays as it is


def resolve_tracking_uri(uri: str) -> str:
    """An MLflow tracking URI with a local store (``file:./mlruns``, a bare path, ``sqlite:///x.db``) made
    absolute, so that ``--resume`` finds the same store from any working directory; other URIs unchanged."""
    parsed = urllib.parse.urlparse(uri)
    if uri in NAMED_STORES:
        return uri
    if len(parsed.scheme) <= 1:  # a bare path (or a Windows drive letter)
        return Path(uri).expanduser().resolve().as_uri()
    if parsed.scheme == "file" and not parsed.netloc:
        return Path(urllib.parse.unquote(parsed.path)).expanduser().resolve().as_uri()
    if parsed.scheme == "sqlite" and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = uri[len("sqlite:///") :]
        return uri if path.startswith(":memory:") else "sqlite:///" + str(Path(path).expanduser().resolve())
    return uri
