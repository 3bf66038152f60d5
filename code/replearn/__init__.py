"""replearn: the companion code of the book 表示学习 (representation learning with autoencoders).

    from replearn import load_mnist, Autoencoder, TrainConfig, train
    data = load_mnist()
    history = train(Autoencoder(), data, TrainConfig(epochs=5))

Importing the package loads no data and trains nothing.
"""
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import MNIST, load_mnist
from .models import VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder
from .train import History, TrainConfig, pick_device, set_seed, train

__all__ = [
    "MNIST", "load_mnist",
    "Autoencoder", "SparseAutoencoder", "DenoisingAutoencoder", "VAE",
    "TrainConfig", "History", "train", "set_seed", "pick_device",
    "Checkpoint", "save_checkpoint", "load_checkpoint",
]
__version__ = "0.1.0"
