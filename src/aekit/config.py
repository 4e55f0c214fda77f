"""Run configuration: the model's options (one class per family), the data's and the training's.

A run is configured by three sections. ``data`` and ``train`` are the same for every model; the
``model`` section is the configuration class of the model's *family* (:class:`ModelConfig`
subclasses, defined beside each family in :mod:`aekit.models`), so a VAE's configuration holds the
options that apply to a VAE and nothing else. A *preset* (``--model dae``) names a family and
defaults for some of its options; any option given explicitly wins.

The same keys come from the command line (``--latent-dim 8``), from a YAML file (flat or grouped
under ``model:`` / ``data:`` / ``train:``) or from Python keywords. Unknown keys are refused with a
suggestion, and a key of another family says which models it applies to. Nothing mutates a config
after it is built; :meth:`RunConfig.replace` makes a changed copy.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from aekit.errors import ConfigError, check_choice, suggest
from aekit.registry import FAMILIES, LIKELIHOODS, family_of, preset_names

FORMAT = 2  # of config.yaml; 0.1.0 wrote format 1 (no key), converted on load by aekit.runs.layout

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "leaky_relu", "none")
NOISE = ("none", "gaussian", "salt_pepper", "mask")
NORMALIZE = ("auto", "standard", "none")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine", "iwae")
CONV_CHANNELS = (32, 64)  # the default stages of --arch conv
MLP_HIDDEN = (400,)  # the default hidden layer of --arch mlp
# The widest layer or code accepted: far beyond any that trains, and a typo such as 1e9 would
# otherwise try to allocate gigabytes of weights before failing.
MAX_WIDTH = 2**20
CUSTOM = "custom"  # the arch of a model built from the user's own networks (Python API only)

# Architectures from papers, given as --arch NAME: defaults for keys in any section, resolved to a
# plain architecture. An explicit key still wins.
ARCH_PRESETS: dict[str, dict[str, object]] = {
    # Burda et al. 2016 (IWAE), one stochastic layer: 784-200-200-50, tanh, bernoulli, batch 20,
    # Adam (0.9, 0.999, eps 1e-4). Their schedule is --lr-schedule iwae (3,280 passes in all).
    "iwae-paper": {
        "arch": "mlp",
        "hidden": (200, 200),
        "activation": "tanh",
        "latent_dim": 50,
        "likelihood": "bernoulli",
        "batch_size": 20,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_eps": 1e-4,
    },
}


# --- the model section: a base, shared option groups, and one subclass per family ------------------


@dataclass(frozen=True)
class ModelConfig:
    """Options every model has. A family subclasses it (with the option groups below) and sets:

    - ``family``: its name in :data:`aekit.registry.FAMILIES`;
    - ``presets``: ``{preset: {option: default}}``, the ``--model`` names it answers to;
    - ``fallbacks``: the value of a preset-governed option declared ``None`` when the preset leaves
      it unset (an option with a real default falls back to it);
    - ``renamed``: ``{old key: new key}`` for keys that earlier releases spelled otherwise;
    - ``train_defaults``: ``{preset: {training option: default}}`` where a preset needs other
      training than the common defaults to work (e.g. ``linear-ae``'s annealed learning rate).

    Each class in the hierarchy may define ``_check(self)``; :meth:`validate` runs all of them.
    """

    model: str = ""  # the preset; options "set by --model" take its values unless given

    family: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    fallbacks: ClassVar[dict[str, Any]] = {}
    renamed: ClassVar[dict[str, str]] = {}
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __post_init__(self) -> None:
        if not self.model and self.presets:
            object.__setattr__(self, "model", next(iter(self.presets)))
        preset = self.presets.get(self.model, {})
        for name in self.governed():
            if getattr(self, name) is None:
                object.__setattr__(self, name, preset.get(name, self.fallback(name)))

    @classmethod
    def all_fallbacks(cls) -> dict[str, Any]:
        """The ``fallbacks`` of the family and of its option groups."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("fallbacks", {}))
        return merged

    @classmethod
    def governed(cls) -> set[str]:
        """Options whose default comes from the preset (declared ``None``)."""
        names = set(cls.field_names())
        return {k for k in cls.all_fallbacks() if k in names} | {
            k for p in cls.presets.values() for k in p if k in names
        }

    def fallback(self, name: str) -> Any:
        """The value of option ``name`` when the preset leaves it unset: its fallback, else its declared default."""
        fallbacks = self.all_fallbacks()
        if name in fallbacks:
            return fallbacks[name]
        default = self.__dataclass_fields__[name]
        return default.default_factory() if default.default_factory is not dataclasses.MISSING else default.default

    def default_of(self, name: str) -> Any:
        """The value option ``name`` has when it is not given: the preset's, or the class default."""
        return self.preset_default(name) if name in self.governed() else self.fallback(name)

    def training_defaults(self) -> dict[str, Any]:
        """The training options this preset sets unless they are given (its ``train_defaults``)."""
        return dict(self.train_defaults.get(self.model, {}))

    def preset_default(self, name: str) -> Any:
        """The value the preset gives option ``name`` when it is not set explicitly."""
        return self.presets.get(self.model, {}).get(name, self.fallback(name))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def validate(self) -> ModelConfig:
        check_choice("model", self.model, tuple(self.presets))
        for cls in reversed(type(self).__mro__):
            check = vars(cls).get("_check")
            if check is not None:
                check(self)
        return self

    # Facts about the configured model that other sections depend on (see RunConfig.validate).
    def corruption(self) -> tuple[str, float]:
        """The input corruption used in training: ``(kind, level)``, ``("none", 0.0)`` without one."""
        return "none", 0.0

    def differentiates_gradients(self) -> bool:
        """Whether the loss differentiates through a gradient (torch.compile cannot train it)."""
        return False

    def needs_float32(self) -> bool:
        """Whether training needs float32 throughout (no mixed precision)."""
        return False


@dataclass(frozen=True)
class NetworkOptions:
    """The built-in encoder and decoder networks."""

    arch: str = "mlp"  # mlp | conv (custom: your own networks, from Python)
    hidden: tuple[int, ...] | None = None  # MLP layer widths, or conv channels per stride-2 stage (conv: 32,64) [400]
    latent_dim: int = 20  # size of the code
    activation: str | None = None  # of the hidden layers [relu]

    fallbacks: ClassVar[dict[str, Any]] = {"hidden": MLP_HIDDEN, "activation": "relu"}

    def fallback(self, name: str) -> Any:
        if name == "hidden":
            return CONV_CHANNELS if self.arch == "conv" else MLP_HIDDEN
        return super().fallback(name)  # type: ignore[misc]

    def _check(self) -> None:
        check_choice("arch", self.arch, ("mlp", "conv", *ARCH_PRESETS, CUSTOM))
        check_choice("activation", self.activation, ACTIVATIONS)
        if any(w < 1 for w in self.hidden):
            raise ConfigError(f"hidden widths must be positive integers, got {list(self.hidden)}.")
        if self.arch == "conv" and not self.hidden:
            raise ConfigError("arch 'conv' needs at least one stage: pass channels, e.g. --hidden 32,64.")
        positive("latent_dim", self.latent_dim)
        for name, value in (("hidden width", max(self.hidden, default=1)), ("latent_dim", self.latent_dim)):
            if value > MAX_WIDTH:
                raise ConfigError(
                    f"{name} must be at most {MAX_WIDTH:,} (a layer that wide needs gigabytes of weights), got {value}."
                )


@dataclass(frozen=True)
class LikelihoodOptions:
    """The observation model p(x | z), the reconstruction cost C."""

    likelihood: str | None = None  # bernoulli | gaussian | auto: bernoulli for data in [0, 1] [auto]
    obs_std: float = 1.0  # standard deviation of the gaussian likelihood (initial value when learned)
    learn_obs_std: bool = False  # learn one standard deviation per data dimension

    fallbacks: ClassVar[dict[str, Any]] = {"likelihood": "auto"}

    def _check(self) -> None:
        if self.likelihood != "auto":
            LIKELIHOODS.get(self.likelihood)
        positive("obs_std", self.obs_std)


@dataclass(frozen=True)
class CorruptionOptions:
    """Input corruption while training (denoising)."""

    noise: str | None = None  # input corruption while training: gaussian | salt_pepper | mask [none]
    noise_level: float | None = None  # sigma (gaussian) or the fraction of corrupted elements [0]

    fallbacks: ClassVar[dict[str, Any]] = {"noise": "none", "noise_level": 0.0}

    def corruption(self) -> tuple[str, float]:
        return self.noise, self.noise_level

    def _check(self) -> None:
        check_choice("noise", self.noise, NOISE)
        non_negative("noise_level", self.noise_level)
        if self.noise in ("salt_pepper", "mask") and not 0 <= self.noise_level <= 1:
            raise ConfigError(
                f"noise_level is the fraction of corrupted elements for noise '{self.noise}' and must lie "
                f"in [0, 1], got {self.noise_level}."
            )


@dataclass(frozen=True)
class ConditionOptions:
    """Conditioning on class labels: q(z | x, y) and p(x | z, y)."""

    condition_on: str = "none"  # none | labels: a conditional model p(x | z, y), q(z | x, y)
    num_classes: int = 0  # classes of the condition; set from the data when condition_on = labels

    def _check(self) -> None:
        check_choice("condition_on", self.condition_on, ("none", "labels"))
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}.")


# --- the data and training sections ---------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split."""

    data: str = "digits"  # digits | mnist | dsprites(-small) | a path (.npy, .npz, .csv, image or IDX folder)
    valid_fraction: float = 0.1  # for sources without a fixed split
    test_fraction: float = 0.1  # for sources without a fixed split
    split_seed: int = 0  # the split is fixed by this seed, independent of the training seed
    normalize: str = "auto"  # auto: standardise tabular data (train statistics), leave images as they are
    label_column: str | None = None  # CSV column holding class labels (name or index)
    mnist_train: str = "train"  # train (50k) | train+valid (60k)
    binarize: str = "none"  # none | static (one seeded draw of every split) | dynamic (a new draw per batch)
    binarize_seed: int = 0  # seed of the fixed binarisation of the valid and test splits
    # memory | stream (.npy read in blocks while training: data larger than memory) | auto: stream a
    # .npy whose float32 copy would fill more than half the available memory
    storage: str = "auto"
    # train and validate on these labels only; the test split keeps every class, so the others are the
    # anomalies of the one-class protocol (Ruff et al. 2018); empty: every class
    classes: tuple[int, ...] = ()
    # leave these labels out of train and valid (the held-out-class protocol); the test split keeps them
    exclude_classes: tuple[int, ...] = ()

    def validate(self) -> DataConfig:
        check_choice("normalize", self.normalize, NORMALIZE)
        check_choice("mnist_train", self.mnist_train, ("train", "train+valid"))
        check_choice("binarize", self.binarize, ("none", "static", "dynamic"))
        check_choice("storage", self.storage, ("auto", "memory", "stream"))
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {value}.")
        if self.classes and self.exclude_classes:
            raise ConfigError(
                "Give either classes (the labels to train on) or exclude_classes (the labels to leave out), not both."
            )
        if any(c < 0 for c in (*self.classes, *self.exclude_classes)):
            raise ConfigError("classes and exclude_classes are labels: integers >= 0.")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"valid_fraction + test_fraction must be < 1 to leave training data, got "
                f"{self.valid_fraction} + {self.test_fraction}."
            )
        check_seed("split_seed", self.split_seed)
        check_seed("binarize_seed", self.binarize_seed)
        return self


@dataclass(frozen=True)
class TrainConfig:
    """How the model is trained."""

    epochs: int = 50  # passes over the training split
    batch_size: int = 128  # samples per optimiser step
    lr: float = 1e-3  # Adam's learning rate
    weight_decay: float = 0.0  # L2 penalty on the weights (Adam's weight_decay)
    adam_beta1: float = 0.9  # Adam's decay of the gradient's mean
    adam_beta2: float = 0.999  # Adam's decay of the gradient's square
    adam_eps: float = 1e-8  # Adam's epsilon
    adam_impl: str = "fused"  # fused (one kernel per step; fastest in bench/) | foreach (per op over all params) | loop
    # fp32 | bf16: matrix products and convolutions in bfloat16 under autocast, weights and losses in
    # float32 (CPUs with AVX512-BF16 or AMX, and CUDA) | fp16: CUDA only, with dynamic loss scaling
    precision: str = "fp32"
    # auto: channels_last for models with 2-D convolutions (oneDNN's preferred layout: ~1.25x on CPU,
    # bench/) | channels_last | contiguous
    memory_format: str = "auto"
    # compile the training step's forward pass with torch.compile (inductor; needs a C++ compiler on the
    # CPU): ~15 s to compile, then ~1.2x on the conv AE on CPU, nothing on the MLP VAE (bench/)
    compile: bool = False
    clip_grad_norm: float = 0.0  # clip the gradients' global L2 norm to this before each step; 0: no clipping
    # constant | cosine: lr * (1 + cos(pi * epoch / epochs)) / 2, annealed to 0 at the last epoch (Loshchilov &
    # Hutter 2017; with --time-limit, at the limit if that comes first) | iwae: 3^i epochs at lr * 10^(-i/7),
    # i = 0..7 (Burda et al. 2016)
    lr_schedule: str = "constant"
    seed: int = 0  # seed of the initial weights, the batch order and every random draw in training
    patience: int = 0  # early stopping: epochs without validation improvement; 0 disables it
    # stop after the epoch that reaches this many minutes of training; 0: no limit. The cosine schedule then
    # anneals over whichever ends first, the epochs or the minutes
    time_limit: float = field(default=0.0, metadata={"metavar": "MIN"})
    device: str = "auto"  # auto: cuda when present, else cpu
    progress: bool = True  # show a progress bar
    # steps between reads of the running loss (a host sync): the progress bar, callbacks' on_step, TensorBoard
    log_every: int = 25
    # log to TensorBoard in this directory (pip install 'aekit[tensorboard]'): the loss every log_every steps,
    # each epoch's metrics and image grids; relative to the run directory; the flag alone: RUN_DIR/tensorboard
    tensorboard: str | None = field(default=None, metadata={"flag_alone": "tensorboard", "metavar": "DIR"})
    # log to MLflow at this tracking URI (pip install 'aekit[mlflow]'), e.g. http://host:5000 or file:./mlruns:
    # the config as parameters, each epoch's metrics, the run directory as artifacts
    mlflow: str | None = field(default=None, metadata={"metavar": "URI"})

    def validate(self) -> TrainConfig:
        positive("epochs", self.epochs)
        positive("batch_size", self.batch_size)
        positive("lr", self.lr)
        non_negative("weight_decay", self.weight_decay)
        if not self.clip_grad_norm >= 0:
            raise ConfigError(f"clip_grad_norm must be >= 0 (0 disables clipping), got {self.clip_grad_norm}.")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0 (0 disables early stopping), got {self.patience}.")
        non_negative("time_limit", self.time_limit)
        check_seed("seed", self.seed)
        check_choice("device", self.device, DEVICES)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("adam_impl", self.adam_impl, ("foreach", "fused", "loop"))
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("memory_format", self.memory_format, ("auto", "channels_last", "contiguous"))
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}.")
        positive("adam_eps", self.adam_eps)
        if isinstance(self.log_every, bool) or not isinstance(self.log_every, int) or self.log_every < 1:
            raise ConfigError(f"log_every must be an integer >= 1 (steps between loss reads), got {self.log_every!r}.")
        for name, what in (("tensorboard", "a directory"), ("mlflow", "a tracking URI")):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ConfigError(f"{name} must be {what}, got an empty string. Leave it out to log nothing.")
        return self


def model_config(model: str = "vae", **options: Any) -> ModelConfig:
    """The configuration of a ``--model`` preset, e.g. ``model_config("dae", noise_level=0.2)``."""
    return from_dict({"model": model, **options}).model


def _default_model() -> ModelConfig:
    return family_of("vae").config()


def _default_train() -> TrainConfig:
    return TrainConfig(**_default_model().training_defaults())


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: ``model``, ``data`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=_default_model)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=_default_train)

    def validate(self) -> RunConfig:
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.train.compile and self.model.differentiates_gradients():
            raise ConfigError(
                "--compile cannot train this model: its loss differentiates through a gradient (the contractive "
                "penalty's Jacobian, or the latent EBM's inference), which compiled code does not support. "
                "Drop --compile."
            )
        if self.train.precision != "fp32" and self.model.needs_float32():
            raise ConfigError(
                f"The '{self.model.model}' model needs float32 throughout (e.g. the latent EBM infers its codes by "
                "gradient descent); use --precision fp32."
            )
        return self

    def replace(self, **overrides: Any) -> RunConfig:
        """Return a copy with flat keys (``latent_dim=8``) or sections (``model={...}``) replaced."""
        return from_dict(overrides, base=self)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as written to config.yaml (with the file format's version first)."""
        return {"format": FORMAT} | {
            name: {f.name: _plain(getattr(section, f.name)) for f in fields(section)}
            for name, section in self.sections().items()
        }

    def sections(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "train": self.train}


# Keys of the data and training sections (the model's depend on its family).
COMMON_SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainConfig}
COMMON_KEYS: dict[str, str] = {f.name: s for s, cls in COMMON_SECTIONS.items() for f in fields(cls)}


def from_dict(values: Mapping[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a validated :class:`RunConfig` from flat and/or grouped keys, on top of ``base``.

    Keys may use dashes or underscores. Unknown keys raise :class:`ConfigError` with a suggestion.
    A ``model`` key switches the preset: options the new preset governs take its values unless they
    are given; options the old and new families share carry over from ``base``.
    """
    base = base or RunConfig()
    updates: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key == "format":
            continue  # config.yaml's version, read by aekit.runs.layout
        if key in updates and (isinstance(value, Mapping) or dataclasses.is_dataclass(value)):
            items = value.items() if isinstance(value, Mapping) else _fields_of(value)
            for sub_key, sub_value in items:
                sub_key = str(sub_key).replace("-", "_")
                if key == "model" and sub_key in COMMON_KEYS:
                    raise ConfigError(
                        f"Unknown key '{sub_key}' in section 'model': it belongs in section '{COMMON_KEYS[sub_key]}'."
                    )
                if key != "model" and COMMON_KEYS.get(sub_key) != key:
                    raise ConfigError(
                        f"Unknown key '{sub_key}' in section '{key}'."
                        f"{suggest(sub_key, [f.name for f in fields(COMMON_SECTIONS[key])])}"
                    )
                updates[key][sub_key] = sub_value
            continue
        if key in ("train",) or (key in updates and key not in COMMON_KEYS and key != "model"):
            raise ConfigError(f"Section '{key}' must be a mapping of keys to values, got {value!r}.")
        flat[key] = value
    for key, value in flat.items():  # 'model' and 'data' are also keys: model="vae", data="digits"
        updates[COMMON_KEYS.get(key, "model")][key] = value
    arch = updates["model"].get("arch")
    if arch is not None and str(arch) in ARCH_PRESETS:
        for key, value in ARCH_PRESETS[str(arch)].items():
            updates[COMMON_KEYS.get(key, "model")].setdefault(key, value)
        updates["model"]["arch"] = ARCH_PRESETS[str(arch)]["arch"]
    model = _model_section(updates["model"], base.model)
    _preset_training(updates["train"], model, base)
    sections = {"model": model}
    for name, section in base.sections().items():
        if name != "model":
            typed = {k: _coerce(type(section), k, v) for k, v in updates[name].items()}
            sections[name] = dataclasses.replace(section, **typed)
    return RunConfig(**sections).validate()


def _preset_training(given: dict[str, Any], model: ModelConfig, base: RunConfig) -> None:
    """A new preset's training defaults go into ``given`` (the training keys to set), unless given:
    like a model option the preset governs, a value that came from the old preset's defaults follows
    the new one, a value set by hand stays."""
    if model.model == base.model.model:
        return
    old, new = base.model.training_defaults(), model.training_defaults()
    for name in old.keys() | new.keys():
        common = TrainConfig.__dataclass_fields__[name].default
        if name not in given and getattr(base.train, name) == old.get(name, common):
            given[name] = new.get(name, common)


def _model_section(given: dict[str, Any], base: ModelConfig) -> ModelConfig:
    """The model section: ``given`` keys on top of ``base``, in the family of the (new) preset."""
    preset = str(given.get("model", base.model))
    family = family_of(preset)
    cls = family.config
    known = set(cls.field_names())
    for key in given:
        if key not in known:
            raise ConfigError(foreign_key_message(key, preset, cls))
    if type(base) is cls:  # the same family: start from the base's values
        values = {f: getattr(base, f) for f in cls.field_names()}
    else:  # another family: carry over the options both share that were set away from their defaults
        shared = [f for f in cls.field_names() if f in base.field_names()]
        values = {f: getattr(base, f) for f in shared if getattr(base, f) != base.default_of(f)}
    if preset != base.model or type(base) is not cls:
        # A new preset sets the options it governs, unless they are given; an option whose value
        # came from the old preset follows the new one, a value set by hand stays.
        old_governed = base.governed()
        for name in cls.governed():
            if name not in values or (name in old_governed and values[name] == base.preset_default(name)):
                values[name] = None
        values["model"] = preset
    if given.get("arch") == "conv" and "hidden" not in given and values.get("hidden") == MLP_HIDDEN:
        values["hidden"] = None  # switching to conv: the MLP's fallback width would be one huge stage
    values.update({k: _coerce(cls, k, v) for k, v in given.items()})
    return cls(**values)


def foreign_key_message(key: str, preset: str, cls: type) -> str:
    if key in cls.renamed:
        return f"Option '{key}' is called '{cls.renamed[key]}' for the '{preset}' model."
    owners = [p for _, fam in FAMILIES.items() if key in fam.config.field_names() for p in fam.presets]
    if owners:
        return (
            f"Option '{key}' does not apply to the '{preset}' model; it belongs to {', '.join(owners)}. "
            f"Drop it, or choose one of those with --model."
        )
    everything = {*cls.field_names(), *COMMON_KEYS}
    return (
        f"Unknown option '{key}'.{suggest(key, everything)} Run 'aekit train --model {preset} --help' for the "
        "list of options."
    )


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with clear errors for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist. Check the path passed to --config.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {err}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of keys to values, got {type(values).__name__}.")
    return values


def save_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


__all__ = [
    "ARCH_PRESETS",
    "ConditionOptions",
    "CorruptionOptions",
    "DataConfig",
    "LikelihoodOptions",
    "ModelConfig",
    "NetworkOptions",
    "RunConfig",
    "TrainConfig",
    "from_dict",
    "load_yaml",
    "model_config",
    "preset_names",
    "save_yaml",
]


# --- helpers -------------------------------------------------------------------------------------


def positive(name: str, value: float) -> None:
    # An int is finite however large (and math.isfinite cannot convert one beyond float's range).
    if not (value > 0 and (isinstance(value, int) or math.isfinite(value))):
        raise ConfigError(f"{name} must be > 0{'' if isinstance(value, int) else ' and finite'}, got {value}.")


def check_seed(name: str, value: int) -> None:
    # The range numpy's and torch's generators both accept (torch takes an unsigned 64-bit seed).
    if not 0 <= value < 2**64:
        raise ConfigError(f"{name} must be an integer in [0, 2**64), got {value}. Pass e.g. {name}=0.")


def non_negative(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value}.")


def _fields_of(section: Any) -> list[tuple[str, Any]]:
    return [(f.name, getattr(section, f.name)) for f in fields(section)]


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's comment (beside it, or on the lines just above it): the text of its --help.

    The comments in the dataclasses are the one place where an option is described; a family's
    configuration inherits those of its option groups."""
    names = {f.name for f in fields(cls)}
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or "__dataclass_fields__" not in vars(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):  # no source (e.g. a frozen build): flags keep their defaults only
            continue
        above: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("#"):
                above.append(text.lstrip("#").strip())
                continue
            match = re.match(r"(\w+)\s*:", text)
            if match and match.group(1) in names and match.group(1) in vars(klass).get("__annotations__", {}):
                beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
                # A trailing "[fallback]" is for readers of the source; --help shows the default itself.
                helps[match.group(1)] = re.sub(r"\s*\[[^\]]*\]$", "", " ".join([*above, beside]).strip())
            above = []
    return helps


def field_type(cls: type, name: str) -> Any:
    """The declared type of a field, with ``X | None`` reduced to ``X``."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Convert a value from the CLI or YAML to the field's declared type, or raise ConfigError."""
    hint = field_type(cls, name)
    origin = typing.get_origin(hint)
    try:
        if value is None:
            return None
        if origin is tuple:  # tuple[int, ...]: "400,200", [400, 200] or 400
            if isinstance(value, str):  # "" or "none" is the empty tuple (no hidden layer)
                value = [v for v in value.replace(" ", "").split(",") if v and v.lower() != "none"]
            elif not isinstance(value, (list, tuple)):
                value = [value]
            return tuple(_to_int(v) for v in value)
        if origin is dict:  # "name=0.1,other=2" or a mapping
            if isinstance(value, str):
                pairs = [p.split("=", 1) for p in value.replace(" ", "").split(",") if p]
                if any(len(p) != 2 for p in pairs):
                    raise ValueError
                return {k: float(v) for k, v in pairs}
            if not isinstance(value, Mapping):
                raise ValueError
            return dict(value)
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            return bool(value)
        if hint is int:
            return _to_int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("1e400"))
        expected = {int: "an integer", float: "a number", bool: "true or false"}.get(hint)
        if expected is None:
            expected = "NAME=WEIGHT pairs" if origin is dict else "a list of integers"
        raise ConfigError(f"Option '{name}' expects {expected}, got {value!r}.") from None


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str) and "e" in value.lower():  # "1e3"; "1.5e0" is no integer, as 1.5 is not
        value = float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
