"""What the commands share: the parser that names unknown options, the config flags of a model family,
the run-and-data arguments, and checked output paths."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.config import COMMON_SECTIONS, CONV_CHANNELS, MLP_HIDDEN, field_help, field_type, foreign_key_message
from aekit.data import in_memory
from aekit.errors import ConfigError, suggest
from aekit.fsutil import atomic_path
from aekit.registry import FAMILIES, Family, preset_names
from aekit.runs.layout import strict_json

# Flags that earlier releases spelled otherwise: {old flag: message}.
RENAMED_FLAGS = {
    "--level": "'--level' is now '--noise-level' (the same flag as in aekit train).",
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose unknown options raise ConfigError with a suggestion."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            sub = getattr(ns, "_parser", self)
            options = [o for a in sub._actions for o in a.option_strings]
            bad = extra[0].split("=")[0]
            command = getattr(ns, "command", "") or ""
            renamed = getattr(sub, "renamed_flags", {})
            if bad in renamed:
                raise ConfigError(renamed[bad])
            family = getattr(sub, "family", None)
            key = bad.lstrip("-").replace("-", "_")
            if family is not None and bad.startswith("--") and key in _other_family_keys(family):
                raise ConfigError(foreign_key_message(key, family.config().model, family.config))
            raise ConfigError(
                f"Unknown option '{extra[0]}'.{suggest(bad, options)} "
                f"Run 'aekit {command} --help' for the list of options.".replace("  ", " ")
            )
        return ns


def _other_family_keys(family: Family) -> set[str]:
    return {f for _, other in FAMILIES.items() for f in other.config.field_names()} - set(family.config.field_names())


def add_config_flags(parser: argparse.ArgumentParser, family: Family) -> None:
    """One flag per option of the family's model section and of the data and training sections
    (``latent_dim`` -> ``--latent-dim``); defaults stay None so that a YAML file's values are only
    overridden by flags actually given."""
    parser.family = family  # type: ignore[attr-defined]  # for the messages about other families' options
    cls = family.config
    presets = ", ".join(family.presets)
    groups = {
        "model": (f"model options ({presets})", cls),
        **{s: (f"{s} options", c) for s, c in COMMON_SECTIONS.items()},
    }
    governed = cls.governed()
    fallbacks = cls.all_fallbacks()
    for section, (title, klass) in groups.items():
        group = parser.add_argument_group(title)
        helps = field_help(klass)
        for f in fields(klass):
            flag = "--" + f.name.replace("_", "-")
            hint = field_type(klass, f.name)
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            by_preset = {p: d[f.name] for p, d in cls.train_defaults.items() if section == "train" and f.name in d}
            if by_preset:
                shown = ", ".join(f"{p}: {_shown(v)}" for p, v in by_preset.items())
                default = f"{_shown(default)} ({shown})"
            if section == "model" and f.name in governed:
                default = f"set by --model, else {_shown(fallbacks.get(f.name))}"
                if f.name == "hidden":
                    default = f"set by --model, else {_shown(MLP_HIDDEN)} (conv: {_shown(CONV_CHANNELS)})"
            text = helps.get(f.name, "")
            if f.name == "model":
                default = "vae"
                text = f"one of {', '.join(preset_names())}; {text}"
            text = f"{text}; default: {_shown(default)}" if text else f"default: {_shown(default)}"
            text = text.replace("%", "%%")  # argparse formats help strings with %
            metavar = f.metadata.get("metavar", f.name.upper())
            if hint is bool:
                group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
            elif "flag_alone" in f.metadata:  # an optional value: the flag alone means the declared one
                group.add_argument(flag, dest=f.name, default=None, nargs="?", const=f.metadata["flag_alone"],
                                   metavar=metavar, help=text)  # fmt: skip
            else:
                group.add_argument(flag, dest=f.name, default=None, metavar=metavar, help=text)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


def given_config(args: argparse.Namespace, family: Family) -> dict[str, Any]:
    """The config keys given on the command line (flags left out are None)."""
    names = [*family.config.field_names(), *(f.name for c in COMMON_SECTIONS.values() for f in fields(c))]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def add_run_and_data(p: argparse.ArgumentParser, default_split: str = "test") -> None:
    p.add_argument("run_dir")
    p.add_argument("--data", help="data to use (default: the run's own); split and normalised as in training")
    p.add_argument("--split", default=default_split, help=f"train, valid, test or all (default: {default_split})")


def add_run_and_rows(p: argparse.ArgumentParser) -> None:
    """RUN_DIR, --data and --split for commands that take new data: a file given with --data is used
    whole, in file order (not re-split), unless --split is given."""
    p.add_argument("run_dir")
    p.add_argument("--data", help="a file or folder of new data, used whole in its own order and normalised as in "
                   "training; or a data set name (default: the run's own data)")  # fmt: skip
    p.add_argument("--split", help="train, valid, test or all (default: test of the run's data; a file given with "
                   "--data is used whole unless --split is given)")  # fmt: skip


def rows_data(run: Any, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The data of :func:`add_run_and_rows`: a --data file whole, else a split (default test)."""
    from aekit.data import DATASET_NAMES

    if args.data is not None and args.split is None and args.data.lower() not in DATASET_NAMES:
        return run.load_rows(args.data)
    args.split = args.split or "test"
    return split_data(run, args)


def split_data(run: Any, args: argparse.Namespace, dataset: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The requested split of the run's (or --data) data set, normalised as in training."""
    dataset = dataset or run.load_data(args.data)
    if args.split == "all":
        xs = [in_memory(x) for x in (dataset.train, dataset.valid, dataset.test)]
        ys = [dataset.train_labels, dataset.valid_labels, dataset.test_labels]
        labels = torch.cat(ys) if all(y is not None for y in ys) else None
        return torch.cat(xs), labels
    x, y = dataset.split(args.split)
    if not len(x):
        raise ConfigError(f"The {args.split} split of '{dataset.name}' is empty. Choose another --split.")
    return x, y


def numbers(text: str | None, kind: type, option: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{option} expects comma-separated {kind.__name__} values, got '{text}'.") from None


def check_out(out: str, suffixes: tuple[str, ...]) -> Path:
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"--out '{out}' must end in {' or '.join(suffixes)}.")
    return path


def print_json(result: dict[str, Any]) -> None:
    """Print ``result`` as one line of strict JSON (what ``--json`` prints): a NaN or infinite number as
    null, and the keys that held one (dotted paths) listed under ``non_finite``."""
    found: list[str] = []
    shown = strict_json(result, found)
    if found:
        shown["non_finite"] = found
    print(json.dumps(shown, allow_nan=False))


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
