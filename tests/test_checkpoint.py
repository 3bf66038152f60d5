"""Checkpoints round-trip the model, its constructor arguments, the config and the history."""
import pytest
import torch

from replearn import (VAE, DenoisingAutoencoder, SparseAutoencoder, TrainConfig, load_checkpoint,
                      save_checkpoint, set_seed, train)
from test_train import data


@pytest.mark.parametrize("make", [
    lambda: VAE(latent_dim=3, likelihood="bernoulli"),
    lambda: SparseAutoencoder(code_dim=10, rho=0.1),
    lambda: DenoisingAutoencoder(noise="mask", mask_prob=0.4, code_dim=5),
])
def test_round_trip(make, tmp_path):
    set_seed(0)
    model = make()
    config = TrainConfig(epochs=2, batch_size=64, progress=False, device="cpu")
    history = train(model, data(128, 32), config)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, config, history)

    loaded = load_checkpoint(path)
    assert type(loaded.model) is type(model) and loaded.model.hparams == model.hparams
    assert loaded.config == config and loaded.history == history
    x = torch.rand(4, 784)
    model.eval()
    assert torch.equal(loaded.model(x), model(x))


def test_file_loads_with_weights_only(tmp_path):
    path = tmp_path / "vae.pt"
    save_checkpoint(path, VAE())
    state = torch.load(path, weights_only=True)  # would raise on pickled objects
    assert state["model"] == "VAE" and state["config"] is None and state["history"] is None


def test_foreign_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not one of replearn's models"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    assert not (tmp_path / "x.pt").exists()
