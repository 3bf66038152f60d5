"""One trainer for every model that answers `loss, parts = model.loss(x)`.

GPU-first: the uint8 images go to the device once; each step draws a batch by index on the
device and converts only that batch to float. Per-step losses stay on the device and are read
back once per epoch, so the host never waits on the device inside an epoch.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class TrainConfig:
    epochs: int = 10  # full passes over the training images
    batch_size: int = 128  # images per optimizer step
    lr: float = 1e-3  # Adam's learning rate
    weight_decay: float = 0.0  # Adam's L2 penalty on the weights
    seed: int = 0  # seeds the batch order and the models' own noise (set_seed)
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu; or name one ("cuda:1")
    amp: bool = False  # bf16 autocast on CUDA (ignored elsewhere)
    eval_batch_size: int = 1024  # images per forward pass when evaluating the test set
    progress: bool = True  # print one line per epoch

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name}={value!r}: must be a whole number >= 1")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr={self.lr!r}: the learning rate must be > 0")


@dataclass
class History:
    """Per-epoch means of the loss and of each part, on the training and the test images."""

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # wall time of each epoch
    device: str = "cpu"

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.seconds) + 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)

    def plot(self, key: str = "loss", ax=None):
        """Train and test curves of one quantity against the epoch; returns the axes."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        ax.plot(self.epochs, self.train[key], marker="o", label=f"train {key}")
        if key in self.test:
            ax.plot(self.epochs, self.test[key], marker="s", label=f"test {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        return ax

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.test.items()} if self.seconds else {}
        return f"History(epochs={len(self.seconds)}, device={self.device!r}, last test={last})"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (every device), so that a run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _images_on(x, input_dim: int, name: str, device: torch.device) -> tuple[torch.Tensor, float]:
    """Check a whole image set once and move it to the device as it is (uint8 stays uint8).

    Returns the tensor and the factor that turns a batch of it into floats in [0, 1].
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"data.{name} must be a torch.Tensor of shape (N, {input_dim}), "
                         f"got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != input_dim:
        raise ValueError(f"data.{name} must have shape (N, {input_dim}), got {tuple(x.shape)}; "
                         "flatten the images with x.flatten(1)")
    if len(x) == 0:
        raise ValueError(f"data.{name} is empty; train needs at least one image")
    if x.dtype == torch.uint8:
        return x.to(device), 1 / 255
    if not x.is_floating_point():
        raise ValueError(f"data.{name} has dtype {x.dtype}; use uint8 pixels (0-255) "
                         "or floats in [0, 1]")
    low, high = x.min().item(), x.max().item()
    if not (0 <= low and high <= 1):
        raise ValueError(f"data.{name} has values in [{low:g}, {high:g}]; use uint8 pixels "
                         "(0-255) or floats in [0, 1] (divide raw pixels by 255)")
    return x.to(device), 1.0


def _batch(x: torch.Tensor, idx: torch.Tensor, scale: float) -> torch.Tensor:
    xb = x.index_select(0, idx)  # (B, input_dim), still uint8; x[idx] is ~25x slower on CPU
    return xb.float().mul_(scale) if scale != 1.0 else xb.float()


def _stack(loss: torch.Tensor, parts: dict) -> torch.Tensor:
    return torch.stack([loss.detach().float(), *(p.float() for p in parts.values())])


def train(model: nn.Module, data, config: TrainConfig | None = None) -> History:
    """Train `model` with Adam on `data.x_train`, evaluating on `data.x_test` after each epoch.

    `data` is an `MNIST` from `load_mnist` or anything with `x_train` (and optionally `x_test`)
    of shape (N, input_dim), as uint8 pixels or floats in [0, 1]. Returns the `History`.
    """
    config = config or TrainConfig()
    config.validate()
    device = pick_device(config.device)
    input_dim = getattr(model, "input_dim", None)
    x_train, scale = _images_on(getattr(data, "x_train", None), input_dim, "x_train", device)
    x_test = getattr(data, "x_test", None)
    if x_test is not None:
        x_test, test_scale = _images_on(x_test, input_dim, "x_test", device)

    set_seed(config.seed)
    order = torch.Generator(device=device)
    order.manual_seed(config.seed)
    model.to(device)
    # fused: one kernel updates every parameter (on CPU about a quarter of a step's time otherwise)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16,
                              enabled=config.amp and device.type == "cuda")
    n, batch_size = len(x_train), config.batch_size
    steps = math.ceil(n / batch_size)
    sizes = torch.tensor([min(batch_size, n - s * batch_size) for s in range(steps)],
                         dtype=torch.float32)
    history, names = History(device=str(device)), None

    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.train()
        perm = torch.randperm(n, device=device, generator=order)
        step_stats = None  # (steps, 1 + number of parts), filled on the device
        for step in range(steps):
            xb = _batch(x_train, perm[step * batch_size:(step + 1) * batch_size], scale)
            with autocast:
                loss, parts = model.loss(xb, validate=False)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step_stats is None:
                names = ["loss", *parts]
                step_stats = torch.empty(steps, len(names), device=device)
            step_stats[step] = _stack(loss, parts)

        test_stats = (_evaluate(model, x_test, test_scale, config, autocast) if x_test is not None
                      else step_stats.new_empty(0))
        stats = torch.cat([step_stats.flatten(), test_stats]).cpu()  # the epoch's one wait for the device
        stats, test_stats = stats[:step_stats.numel()].view(steps, -1), stats[step_stats.numel():]
        bad = (~torch.isfinite(stats).all(1)).nonzero()
        if len(bad):
            model.load_state_dict(snapshot)
            raise FloatingPointError(
                f"the training loss became {stats[bad[0, 0], 0].item()} at epoch {epoch}, step "
                f"{bad[0, 0].item() + 1} of {steps}; the weights were restored to their state at the "
                f"start of epoch {epoch}. Lower TrainConfig.lr (now {config.lr:g}) or check the data")
        means = (stats * sizes[:, None]).sum(0) / n
        for name, value in zip(names, means.tolist()):
            history.train.setdefault(name, []).append(value)
        if x_test is not None:
            for name, value in zip(names, test_stats.tolist()):
                history.test.setdefault(name, []).append(value)
        history.seconds.append(time.perf_counter() - start)
        if config.progress:
            _print_epoch(epoch, config.epochs, history)
    return history


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, scale: float, config: TrainConfig,
              autocast) -> torch.Tensor:
    """Per-image means of the loss and its parts over all of `x`, without gradients: (1 + parts,)."""
    model.eval()
    total = None
    for start in range(0, len(x), config.eval_batch_size):
        xb = _batch(x, torch.arange(start, min(start + config.eval_batch_size, len(x)),
                                    device=x.device), scale)
        with autocast:
            loss, parts = model.loss(xb, validate=False)
        stats = _stack(loss, parts) * len(xb)
        total = stats if total is None else total + stats
    return total / len(x)  # stays on the device; train reads it back with the epoch's stats


def _print_epoch(epoch: int, epochs: int, history: History) -> None:
    def fmt(values: dict) -> str:
        return "  ".join(f"{k} {v[-1]:.4g}" for k, v in values.items())

    line = f"epoch {epoch:>{len(str(epochs))}}/{epochs}  train: {fmt(history.train)}"
    if history.test:
        line += f"  |  test: {fmt(history.test)}"
    print(f"{line}  ({history.seconds[-1]:.1f}s)", flush=True)
