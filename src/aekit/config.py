"""Run configuration: three small frozen dataclasses (model, data, training) and their validation.

The same keys come from the command line (``--latent-dim 8``), from a YAML file (flat or grouped
under ``model:`` / ``data:`` / ``train:``) or from Python keywords. Unknown keys are refused with a
suggestion. Nothing mutates a config after it is built; ``replace`` makes a changed copy.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from aekit.errors import ConfigError, check_choice, suggest

LATENTS = ("deterministic", "gaussian", "vq", "optimized")
SPARSITY = ("none", "l1", "l2", "kl")
NOISE = ("none", "gaussian", "salt_pepper", "mask")
JACOBIAN = ("auto", "closed_form", "exact", "projection")

# A preset is a configuration of the shared parts, not a class: these keys are its defaults, and
# any of them given explicitly wins. Switching preset resets them to the new preset's values.
PRESETS: dict[str, dict[str, object]] = {
    "ae": {"latent": "deterministic"},
    "linear-ae": {
        "latent": "deterministic",
        "hidden": (),
        "activation": "none",
        "code_activation": "none",
        "likelihood": "gaussian",
    },
    "sparse-ae": {"latent": "deterministic", "sparsity": "l1", "sparsity_weight": 1e-3},
    "dae": {"latent": "deterministic", "noise": "mask", "noise_level": 0.5},
    "cae": {"latent": "deterministic", "contractive_weight": 0.1},
    "vae": {"latent": "gaussian"},
    "beta-vae": {"latent": "gaussian", "beta": 4.0},
    # van den Oord et al. 2017: conv encoder/decoder with residual blocks; beta weighs the commitment loss.
    "vq-vae": {"latent": "vq", "hidden": (128,), "beta": 0.25},
    # Seed 000: the code is found by minimising the energy; trained by target propagation.
    "latent-ebm": {"latent": "optimized", "hidden": (64, 64), "likelihood": "gaussian"},
}
MODELS = tuple(PRESETS)
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
# The value of a preset-governed field when the preset does not set it.
CONV_CHANNELS = (32, 64)  # the default stages of --arch conv
PRESET_FALLBACKS: dict[str, object] = {
    "hidden": (400,),
    "latent": "gaussian",
    "activation": "relu",
    "code_activation": "none",
    "likelihood": "auto",
    "beta": 1.0,
    "sparsity": "none",
    "sparsity_weight": 1e-3,
    "noise": "none",
    "noise_level": 0.0,
    "contractive_weight": 0.0,
}
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("auto", "bernoulli", "gaussian")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "leaky_relu", "none")
NORMALIZE = ("auto", "standard", "none")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class ModelConfig:
    """What the network is: a preset (``model``) plus the parts it is built from."""

    model: str = "vae"  # the preset: options "set by --model" take its values unless given
    arch: str = "mlp"  # mlp | conv
    hidden: tuple[int, ...] | None = None  # MLP layer widths, or conv channels per stride-2 stage (conv: 32,64) [400]
    latent_dim: int = 20  # size of the code
    latent: str | None = None  # deterministic (a code h) | gaussian (mean and log-variance)
    activation: str | None = None  # of the hidden layers [relu]
    code_activation: str | None = None  # of a deterministic code, e.g. sigmoid for a shallow AE [none]
    likelihood: str | None = None  # bernoulli | gaussian | auto: bernoulli for data in [0, 1] [auto]
    obs_std: float = 1.0  # standard deviation of the gaussian likelihood (initial value when learned)
    learn_obs_std: bool = False  # learn one standard deviation per data dimension
    beta: float | None = None  # weight of the KL term (beta-VAE when > 1) [1]
    sparsity: str | None = None  # penalty on the code: l1 | l2 | kl (towards sparsity_target) [none]
    sparsity_weight: float | None = None  # lambda of the sparsity penalty [1e-3]
    sparsity_target: float = 0.05  # rho: target mean activation of each unit (kl only)
    noise: str | None = None  # input corruption while training: gaussian | salt_pepper | mask [none]
    noise_level: float | None = None  # sigma (gaussian) or the fraction of corrupted elements [0]
    contractive_weight: float | None = None  # lambda of the contractive penalty ||dh/dx||_F^2 [0]
    jacobian: str = "auto"  # how ||dh/dx||_F^2 is computed: closed_form | exact | projection
    jacobian_projections: int = 1  # random projections per sample (projection only)
    num_codes: int = 512  # VQ-VAE: codebook size K
    code_dim: int = 64  # VQ-VAE: dimension D of each code vector
    res_blocks: int = 2  # VQ-VAE: residual blocks at the lowest resolution (channels: hidden[-1])
    downsample: int = 2  # VQ-VAE: stride-2 stages (28x28 -> 7x7 code maps with 2)
    use_ema: bool = False  # VQ-VAE: codebook updated by exponential moving averages, not by a loss
    ema_decay: float = 0.99  # VQ-VAE: decay of the codebook's moving averages (use_ema only)
    restart_after: int = 100  # VQ-VAE: steps after which an unused code is re-seeded from encoder outputs
    infer_steps: int = 10  # latent EBM: gradient steps of the inference z^ = argmin_z E(y, z) + D(z, z~)
    step_size: float = 0.1  # latent EBM: step size of those gradient steps
    reg: str = "l2"  # latent EBM: R(z) = reg_weight * ||z||_1 (l1) or ||z||^2 (l2)
    reg_weight: float = 1e-3  # latent EBM: weight of R(z)
    d_weight: float = 0.3  # latent EBM: D(z, z~) = d_weight * ||z - z~||^2, the pull towards the encoder's guess
    use_encoder: bool = True  # latent EBM: without an encoder, inference starts at `init`
    init: str = "auto"  # latent EBM: encoder | zero | random (auto: encoder when there is one, else zero)
    free_bits: float = 0.0  # nats per latent dimension below which the KL is not pushed down (Kingma 2016)
    condition_on: str = "none"  # none | labels: a conditional VAE p(x | z, y), q(z | x, y)
    num_classes: int = 0  # classes of the condition; set from the data when condition_on = labels

    def __post_init__(self) -> None:
        preset = PRESETS.get(self.model, {})
        if self.hidden is None and self.arch == "conv" and "hidden" not in preset:
            object.__setattr__(self, "hidden", CONV_CHANNELS)  # 400 channels at full resolution would crawl
        for key, default in PRESET_FALLBACKS.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, preset.get(key, default))

    def validate(self) -> ModelConfig:
        check_choice("model", self.model, MODELS)
        check_choice("arch", self.arch, ARCHS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        if any(w < 1 for w in self.hidden):
            raise ConfigError(f"hidden widths must be positive integers, got {list(self.hidden)}.")
        if self.arch == "conv" and not self.hidden:
            raise ConfigError("arch 'conv' needs at least one stage: pass channels, e.g. --hidden 32,64.")
        _positive("latent_dim", self.latent_dim)
        _positive("obs_std", self.obs_std)
        check_choice("latent", self.latent, LATENTS)
        check_choice("code_activation", self.code_activation, ACTIVATIONS)
        check_choice("sparsity", self.sparsity, SPARSITY)
        check_choice("noise", self.noise, NOISE)
        check_choice("jacobian", self.jacobian, JACOBIAN)
        for name in ("beta", "sparsity_weight", "contractive_weight", "noise_level"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}.")
        if self.noise in ("salt_pepper", "mask") and not 0 <= self.noise_level <= 1:
            raise ConfigError(
                f"noise_level is the fraction of corrupted elements for noise '{self.noise}' and must lie "
                f"in [0, 1], got {self.noise_level}."
            )
        if not 0 < self.sparsity_target < 1:
            raise ConfigError(f"sparsity_target (rho) must lie in (0, 1), got {self.sparsity_target}.")
        if self.sparsity == "kl" and self.code_activation != "sigmoid":
            raise ConfigError(
                "sparsity 'kl' compares each unit's mean activation with a target rate, so the code must "
                f"lie in (0, 1); got code_activation '{self.code_activation}'. Add --code-activation sigmoid, "
                "or use --sparsity l1."
            )
        if self.latent != "deterministic" and (self.sparsity != "none" or self.contractive_weight > 0):
            raise ConfigError(
                "sparsity and contractive penalties act on a deterministic code; this model has a "
                f"'{self.latent}' latent. Use --model ae (or sparse-ae, cae) for them."
            )
        _positive("jacobian_projections", self.jacobian_projections)
        check_choice("condition_on", self.condition_on, ("none", "labels"))
        if self.latent == "optimized":
            check_choice("reg", self.reg, ("l1", "l2"))
            check_choice("init", self.init, ("auto", "encoder", "zero", "random"))
            _positive("infer_steps", self.infer_steps)
            _positive("step_size", self.step_size)
            for name in ("reg_weight", "d_weight"):
                if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                    raise ConfigError(f"{name} must be a finite number >= 0, got {getattr(self, name)}.")
            if self.init == "encoder" and not self.use_encoder:
                raise ConfigError("init 'encoder' needs an encoder; drop --no-use-encoder or use --init zero.")
            if self.condition_on != "none":
                raise ConfigError("A conditional latent EBM is not available; drop --condition-on.")
        if self.latent == "vq":
            if self.num_codes < 2:
                raise ConfigError(
                    f"num_codes (K) must be at least 2 for a codebook to choose from, got {self.num_codes}."
                )
            for name in ("code_dim", "res_blocks", "downsample", "restart_after"):
                if getattr(self, name) < (0 if name == "res_blocks" else 1):
                    raise ConfigError(f"{name} must be positive, got {getattr(self, name)}.")
            if not 0 < self.ema_decay < 1:
                raise ConfigError(f"ema_decay must lie in (0, 1), got {self.ema_decay}.")
            if self.condition_on != "none":
                raise ConfigError("A conditional VQ-VAE is not available; drop --condition-on.")
        if not (self.free_bits >= 0 and math.isfinite(self.free_bits)):
            raise ConfigError(f"free_bits must be a finite number >= 0, got {self.free_bits}.")
        if self.free_bits > 0 and self.latent != "gaussian":
            raise ConfigError("free_bits limits the KL of a gaussian latent; this model has none. Use --model vae.")
        if self.condition_on != "none" and self.contractive_weight > 0:
            raise ConfigError("The contractive penalty is not available for a conditional model; drop one of them.")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {self.num_classes}.")
        return self


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

    def validate(self) -> DataConfig:
        check_choice("normalize", self.normalize, NORMALIZE)
        check_choice("mnist_train", self.mnist_train, ("train", "train+valid"))
        check_choice("binarize", self.binarize, ("none", "static", "dynamic"))
        check_choice("storage", self.storage, ("auto", "memory", "stream"))
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {value}.")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"valid_fraction + test_fraction must be < 1 to leave training data, got "
                f"{self.valid_fraction} + {self.test_fraction}."
            )
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
    lr_schedule: str = "constant"  # constant | iwae: 3^i epochs at lr * 10^(-i/7), i = 0..7 (Burda et al.)
    kl_warmup: int = 0  # steps over which the KL weight rises linearly from 0 to beta
    seed: int = 0  # seed of the initial weights, the batch order and every random draw in training
    patience: int = 0  # early stopping: epochs without validation improvement; 0 disables it
    device: str = "auto"  # auto: cuda when present, else cpu
    progress: bool = True  # show a progress bar

    def validate(self) -> TrainConfig:
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        _positive("lr", self.lr)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0 (0 disables early stopping), got {self.patience}.")
        check_choice("device", self.device, DEVICES)
        check_choice("lr_schedule", self.lr_schedule, ("constant", "iwae"))
        check_choice("adam_impl", self.adam_impl, ("foreach", "fused", "loop"))
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("memory_format", self.memory_format, ("auto", "channels_last", "contiguous"))
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}.")
        _positive("adam_eps", self.adam_eps)
        if self.kl_warmup < 0:
            raise ConfigError(f"kl_warmup must be >= 0 steps, got {self.kl_warmup}.")
        return self


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: ``model``, ``data`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.train.compile and (self.model.contractive_weight > 0 or self.model.latent == "optimized"):
            raise ConfigError(
                "--compile cannot train this model: its loss differentiates through a gradient (the contractive "
                "penalty's Jacobian, or the latent EBM's inference), which compiled code does not support. "
                "Drop --compile."
            )
        if self.train.precision != "fp32" and self.model.latent == "optimized":
            raise ConfigError(
                "The latent EBM infers its codes by gradient descent, which needs float32; "
                "use --precision fp32 with --model latent-ebm."
            )
        return self

    def replace(self, **overrides: Any) -> RunConfig:
        """Return a copy with flat keys (``latent_dim=8``) or sections (``model={...}``) replaced."""
        return from_dict(overrides, base=self)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            name: {f.name: _plain(getattr(section, f.name)) for f in fields(section)}
            for name, section in self.sections().items()
        }

    def sections(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "train": self.train}


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
# Every key is unique across sections, so a flat key names its section unambiguously.
KEY_SECTION: dict[str, str] = {f.name: s for s, cls in SECTIONS.items() for f in fields(cls)}


def from_dict(values: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a validated :class:`RunConfig` from flat and/or grouped keys, on top of ``base``.

    Keys may use dashes or underscores. Unknown keys raise :class:`ConfigError` with a suggestion.
    """
    base = base or RunConfig()
    updates: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key in SECTIONS:
            if isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    sub_key = str(sub_key).replace("-", "_")
                    if KEY_SECTION.get(sub_key) != key:
                        raise ConfigError(
                            f"Unknown key '{sub_key}' in section '{key}'."
                            f"{suggest(sub_key, [f.name for f in fields(SECTIONS[key])])}"
                        )
                    updates[key][sub_key] = sub_value
                continue
            if dataclasses.is_dataclass(value):
                updates[key].update({f.name: getattr(value, f.name) for f in fields(value)})
                continue
            if key not in KEY_SECTION:  # 'model' and 'data' are also keys: model="vae", data="digits"
                raise ConfigError(f"Section '{key}' must be a mapping of keys to values, got {value!r}.")
        if key not in KEY_SECTION:
            raise ConfigError(
                f"Unknown option '{key}'.{suggest(key, KEY_SECTION)} Run 'aekit train --help' for the list of options."
            )
        updates[KEY_SECTION[key]][key] = value
    arch = updates["model"].get("arch")
    if arch is not None:
        check_choice("arch", str(arch), ARCHS + tuple(ARCH_PRESETS))
    if arch in ARCH_PRESETS:
        for key, value in ARCH_PRESETS[str(arch)].items():
            updates[KEY_SECTION[key]].setdefault(key, value)
        updates["model"]["arch"] = ARCH_PRESETS[str(arch)]["arch"]
    preset = updates["model"].get("model")
    if preset is not None:
        check_choice("model", str(preset), MODELS)
        for key, value in PRESETS[str(preset)].items():
            updates["model"].setdefault(key, value)
    if updates["model"].get("arch") == "conv" and "hidden" not in updates["model"]:
        # Switching to conv without channels: the MLP's fallback width would be one huge stage.
        name = str(updates["model"].get("model", base.model.model))
        if "hidden" not in PRESETS.get(name, {}) and base.model.hidden in (None, PRESET_FALLBACKS["hidden"]):
            updates["model"]["hidden"] = CONV_CHANNELS
    sections = {}
    for name, section in base.sections().items():
        typed = {k: _coerce(type(section), k, v) for k, v in updates[name].items()}
        sections[name] = dataclasses.replace(section, **typed)
    return RunConfig(**sections).validate()


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


# --- helpers -------------------------------------------------------------------------------------


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}.")


def field_help(cls: type) -> dict[str, str]:
    """Each field's comment (beside it, or on the lines just above it): the text of its --help.

    The comments in the dataclasses are the one place where an option is described."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (e.g. a frozen build): flags keep their defaults only
        return {}
    names = {f.name for f in fields(cls)}
    helps: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("#").strip())
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match and match.group(1) in names:
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
        if origin is tuple:  # tuple[int, ...]: "400,200", [400, 200] or 400
            if isinstance(value, str):  # "" or "none" is the empty tuple (no hidden layer)
                value = [v for v in value.replace(" ", "").split(",") if v and v.lower() != "none"]
            elif not isinstance(value, (list, tuple)):
                value = [value]
            return tuple(_to_int(v) for v in value)
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
        if value is None:
            return None
        return str(value)
    except (TypeError, ValueError):
        expected = {int: "an integer", float: "a number", bool: "true or false"}.get(hint, "a list of integers")
        raise ConfigError(f"Option '{name}' expects {expected}, got {value!r}.") from None


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
