"""Save a trained model with everything needed to rebuild it, and load it back safely.

The file holds only tensors and plain Python values, so it loads with
`torch.load(..., weights_only=True)`, which cannot run code hidden in a checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .models import VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder
from .train import History, TrainConfig

MODELS = {cls.__name__: cls for cls in (Autoencoder, SparseAutoencoder, DenoisingAutoencoder, VAE)}


@dataclass
class Checkpoint:
    model: nn.Module
    config: TrainConfig | None
    history: History | None


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: TrainConfig | None = None,
                    history: History | None = None) -> None:
    name = type(model).__name__
    if name not in MODELS:
        raise ValueError(f"save_checkpoint: {name} is not one of replearn's models "
                         f"({', '.join(MODELS)}); save its state_dict with torch.save instead")
    torch.save({
        "model": name,
        "hparams": dict(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": asdict(config) if config is not None else None,
        "history": history.to_dict() if history is not None else None,
    }, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    state = torch.load(path, map_location=map_location, weights_only=True)
    model = MODELS[state["model"]](**state["hparams"])
    model.load_state_dict(state["state_dict"])
    model.to(map_location)
    return Checkpoint(
        model=model,
        config=TrainConfig(**state["config"]) if state["config"] is not None else None,
        history=History.from_dict(state["history"]) if state["history"] is not None else None,
    )
