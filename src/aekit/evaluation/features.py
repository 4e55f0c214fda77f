"""Sample quality: FID and KID in the feature space of a small classifier aekit trains on the data.

FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) compare two sets of samples through the
features of a classifier. The papers use Inception-v3 trained on ImageNet; its weights cannot be
fetched here, and they say little about 8x8 digits or tabular rows anyway. So aekit trains a small
classifier on the labelled training split (a two-block CNN for images of at least 16x16 pixels, an
MLP otherwise), takes its 128-unit penultimate layer as the feature space, and caches it by a
fingerprint of the training data. Numbers are comparable between runs on the same data, not with
published Inception FIDs; tables name the feature space they used.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aekit.data.mnist import default_cache_dir
from aekit.errors import DataError
from aekit.fsutil import atomic_path, atomic_write_text

FEATURES = 128
CACHE_VERSION = 1


class FeatureNet(nn.Module):
    """A small classifier whose penultimate layer gives the features."""

    def __init__(self, sample_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.config = {"sample_shape": list(sample_shape), "num_classes": num_classes}
        conv = len(sample_shape) == 3 and min(sample_shape[1:]) >= 16
        if conv:
            c, h, w = sample_shape
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), FEATURES), nn.ReLU(),
            )  # fmt: skip
        else:
            d = math.prod(sample_shape)
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: Any, batch_size: int = 1024) -> np.ndarray:
        self.eval()
        out = [self.body(x[i : i + batch_size].float()) for i in range(0, len(x), batch_size)]
        return torch.cat(out).double().numpy()


@dataclass
class FeatureSpace:
    """A trained feature network and what it is: its test accuracy and where it is cached."""

    net: FeatureNet
    test_accuracy: float
    path: Path
    cached: bool

    def describe(self) -> str:
        kind = "CNN" if isinstance(self.net.body[0], nn.Conv2d) else "MLP"
        return (
            f"features: the {FEATURES}-unit penultimate layer of a small {kind} classifier trained on this data's "
            f"training split ({self.test_accuracy:.1%} test accuracy), not Inception-v3 (no weights can be "
            "downloaded): compare FID/KID between runs on the same data, not with published values"
        )


def fingerprint(name: str, x: torch.Tensor, y: torch.Tensor) -> str:
    """A digest of the training data and labels: the cache key of its feature network."""
    h = hashlib.sha256(f"{CACHE_VERSION}:{name}:{tuple(x.shape)}".encode())
    h.update(np.ascontiguousarray(x.numpy(), dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(y.numpy(), dtype=np.int64).tobytes())
    return h.hexdigest()[:20]


def feature_space(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor | None],
    test: tuple[torch.Tensor, torch.Tensor | None],
    *,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> FeatureSpace:
    """The feature network of a labelled data set: loaded from the cache, else trained and cached."""
    from safetensors.torch import load_file, save_file

    (x, y), (x_test, y_test) = train, test
    if y is None:
        raise DataError(
            f"FID and KID need a classifier's features, and '{name}' has no labels to train one on. Use labelled "
            "data, or leave sample quality out (--no-fid)."
        )
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "features"
    key = fingerprint(name, x, y)
    path = folder / f"{key}.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the initial weights depend on the seed alone
        net = FeatureNet(tuple(x.shape[1:]), int(y.max()) + 1)
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            net.load_state_dict(load_file(path))
            meta = json.loads(path.with_suffix(".json").read_text())
            return FeatureSpace(net.eval(), float(meta["test_accuracy"]), path, cached=True)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            pass
    _fit(net, x, y, seed=seed)
    with torch.no_grad():
        logits = net(x_test.float()) if y_test is not None else None
    accuracy = float((logits.argmax(1) == y_test).float().mean()) if logits is not None else math.nan
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(net.state_dict(), str(tmp))
    atomic_write_text(path.with_suffix(".json"), json.dumps({"data": name, "test_accuracy": accuracy, **net.config}))
    return FeatureSpace(net.eval(), accuracy, path, cached=False)


def _fit(net: FeatureNet, x: torch.Tensor, y: torch.Tensor, *, seed: int) -> None:
    # About 40k samples seen, 3 to 30 passes: 98-99% on MNIST, ~97% on digits.
    epochs = max(3, min(30, math.ceil(40_000 / len(x))))
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=generator).split(128):
                loss = F.cross_entropy(net(x[idx].float()), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    net.eval()


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features ``a`` and ``b`` (Heusel et al. 2017)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    # Units that never fire (ReLU) make the covariances singular: a tiny ridge keeps sqrtm defined, as
    # the reference implementation does when the product is near-singular.
    eps = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + eps, np.cov(b, rowvar=False) + eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on near-singular products; the ridge bounds the error
        root = linalg.sqrtm(cov_a @ cov_b)
    value = float(np.square(mu_a - mu_b).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))
    return max(value, 0.0)


def kid(a: np.ndarray, b: np.ndarray, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel inception distance: the unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over
    random subsets (Binkowski et al. 2018)."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise DataError("KID needs at least two samples in each set.")
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = m * (m - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(values))
