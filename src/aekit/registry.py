"""Registries: the one place where a latent kind, penalty, likelihood or model family is added, by name.

A part is a class registered under the name that configurations use (``latent: gaussian``,
``likelihood: bernoulli``, ``penalties: {decorrelation: 0.01}``, ``model: vae``)::

    @aekit.register_latent("laplace")
    class LaplaceLatent(aekit.parts.Latent): ...

Registering is all it takes: configurations, the command line, run directories and evaluation
find the class here. Names that are not found trigger one import of the plugins (modules named in
the ``AEKIT_PLUGINS`` environment variable, comma-separated, and the ``aekit.plugins`` entry points
of installed packages), so a run trained with a plugin's parts reloads from the command line too.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from aekit.errors import ConfigError, suggest

T = TypeVar("T")

PLUGINS_ENV = "AEKIT_PLUGINS"
PLUGINS_GROUP = "aekit.plugins"
# The package whose import registers every built-in part and family: imported on the first lookup, so
# that ``from aekit.config import model_config`` works without importing all of aekit first.
BUILT_INS = "aekit.models"
_plugins_loaded = False
_built_ins_loaded = False


def load_built_ins() -> None:
    """Import the built-in parts and families once (they register themselves where they are defined)."""
    global _built_ins_loaded
    if not _built_ins_loaded:
        _built_ins_loaded = True  # first: the import itself looks names up while it registers them
        importlib.import_module(BUILT_INS)


def load_plugins() -> None:
    """Import the plugin modules once: ``AEKIT_PLUGINS`` and the ``aekit.plugins`` entry points."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(f"The plugin module '{name}' named in {PLUGINS_ENV} cannot be imported: {err}") from None
    for entry in entry_points(group=PLUGINS_GROUP):
        entry.load()


class Registry(Generic[T]):
    """Named classes (or objects) of one kind of part; ``what`` names the kind in error messages."""

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None, *, replace: bool = False) -> Any:
        """Register ``item`` under ``name``; without ``item``, return a class decorator.

        A class gets ``name`` as its ``name`` attribute, the key configurations use. Registering a
        taken name raises :class:`ConfigError` unless ``replace`` is true."""

        def add(obj: T) -> T:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"A {self.what} needs a non-empty name, got {name!r}.")
            if name in self._items and self._items[name] is not obj and not replace:
                raise ConfigError(
                    f"A {self.what} named '{name}' is already registered ({self._items[name]!r}). "
                    "Choose another name, or pass replace=True."
                )
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            self._items[name] = obj
            return obj

        return add if item is None else add(item)

    def get(self, name: str) -> T:
        """The item called ``name``; an unknown name is a :class:`ConfigError` with a suggestion."""
        if name not in self._items:
            load_built_ins()
        if name not in self._items:
            load_plugins()
        if name not in self._items:
            raise ConfigError(
                f"Unknown {self.what} '{name}'.{suggest(str(name), self._items)} Choose one of: "
                f"{', '.join(self._items)}. A {self.what} from a plugin needs its module imported first "
                f"(in Python, or named in {PLUGINS_ENV})."
            )
        return self._items[name]

    def names(self) -> tuple[str, ...]:
        load_built_ins()
        return tuple(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        load_built_ins()
        return iter(list(self._items.items()))

    def __contains__(self, name: object) -> bool:
        load_built_ins()
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._items)})"


@dataclass(frozen=True)
class Family:
    """A model family: its configuration class (options and presets) and the function that builds it.

    ``build(config, sample_shape, encoder=None, decoder=None)`` returns a model implementing
    :class:`aekit.models.Model`; ``encoder`` / ``decoder`` are a user's own networks, or None for
    the family's built-in ones."""

    name: str
    config: type
    build: Callable[..., Any]

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        return self.config.presets


# The registries of every kind of part. Built-in parts register themselves where they are defined.
LATENTS: Registry[type] = Registry("latent kind")
PENALTIES: Registry[type] = Registry("penalty")
LIKELIHOODS: Registry[type] = Registry("likelihood")
FAMILIES: Registry[Family] = Registry("model family")


def register_latent(name: str) -> Callable[[type], type]:
    """Class decorator: register a latent kind (a subclass of :class:`aekit.parts.Latent`)."""
    return LATENTS.register(name)


def register_penalty(name: str) -> Callable[[type], type]:
    """Class decorator: register a penalty (a subclass of :class:`aekit.parts.Penalty`)."""
    return PENALTIES.register(name)


def register_likelihood(name: str) -> Callable[[type], type]:
    """Class decorator: register a likelihood (a subclass of :class:`aekit.parts.Likelihood`)."""
    return LIKELIHOODS.register(name)


def register_family(config: type, build: Callable[..., Any], *, replace: bool = False) -> Family:
    """Register a model family: ``config`` is a :class:`aekit.config.ModelConfig` subclass whose
    ``family`` names it and whose ``presets`` map each ``--model`` name to its defaults; ``build``
    makes the model. Preset names are unique across families."""
    name = getattr(config, "family", "")
    presets = getattr(config, "presets", None)
    if not isinstance(presets, dict) or not presets:
        raise ConfigError(f"The family '{name}' declares no presets: set {config.__name__}.presets = {{'name': {{}}}}.")
    for other_name, other in FAMILIES.items():
        taken = set(presets) & set(other.presets)
        if taken and other_name != name:
            raise ConfigError(f"The preset(s) {sorted(taken)} of family '{name}' already belong to '{other_name}'.")
    family = Family(name, config, build)
    FAMILIES.register(name, family, replace=replace)
    return family


def family_of(preset: str) -> Family:
    """The family a preset (``--model`` name) belongs to; an unknown name is a :class:`ConfigError`."""
    for attempt in range(2):
        for _, family in FAMILIES.items():
            if preset in family.presets:
                return family
        if attempt == 0:
            load_plugins()
    names = preset_names()
    raise ConfigError(f"Unknown model '{preset}'.{suggest(str(preset), names)} Choose one of: {', '.join(names)}.")


def preset_names() -> tuple[str, ...]:
    """Every ``--model`` name, family by family."""
    return tuple(p for _, family in FAMILIES.items() for p in family.presets)
