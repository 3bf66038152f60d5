"""The trainer: the loss falls, a seed repeats a run, bad input is refused, NaN stops training."""
from types import SimpleNamespace

import pytest
import torch

from replearn import VAE, Autoencoder, SparseAutoencoder, TrainConfig, set_seed, train
from replearn.train import History


def blobs(n=256, seed=0):
    """Images made of a few bright bars, as uint8 pixels: easy to compress, quick to learn."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.zeros(4, 784)
    for k in range(4):
        prototypes[k, k * 150:(k + 1) * 150] = 1.0
    labels = torch.randint(0, 4, (n,), generator=g)
    x = (prototypes[labels] * 0.8 + 0.2 * torch.rand(n, 784, generator=g)) * 255
    return x.to(torch.uint8)


def data(n_train=256, n_test=64):
    return SimpleNamespace(x_train=blobs(n_train, 0), x_test=blobs(n_test, 1))


QUIET = dict(progress=False, device="cpu")


@pytest.mark.parametrize("make", [Autoencoder, SparseAutoencoder, lambda: VAE(likelihood="bernoulli")])
def test_loss_falls(make):
    set_seed(0)
    history = train(make(), data(), TrainConfig(epochs=6, batch_size=32, lr=3e-3, **QUIET))
    for split in (history.train, history.test):
        assert split["loss"][-1] < 0.7 * split["loss"][0]
    assert set(history.train) == set(history.test)
    assert len(history.seconds) == 6 and history.epochs == [1, 2, 3, 4, 5, 6]


def test_history_has_every_part():
    set_seed(0)
    history = train(VAE(), data(64, 16), TrainConfig(epochs=1, **QUIET))
    assert set(history.train) == {"loss", "recon", "kl"}
    assert history.train["loss"][0] == pytest.approx(history.train["recon"][0] + history.train["kl"][0], rel=1e-5)


def test_same_seed_same_history():
    runs = []
    for _ in range(2):
        set_seed(3)
        runs.append(train(VAE(), data(), TrainConfig(epochs=3, batch_size=50, seed=3, **QUIET)))
    assert runs[0].train == runs[1].train and runs[0].test == runs[1].test
    set_seed(3)
    other = train(VAE(), data(), TrainConfig(epochs=3, batch_size=50, seed=4, **QUIET))
    assert other.train != runs[0].train


def test_epoch_means_weight_the_last_partial_batch():
    """With a frozen model the epoch mean must equal the mean over all images."""
    set_seed(0)
    model, d = Autoencoder(), data(100, 10)
    with torch.no_grad():
        expected, _ = model.loss(d.x_train.float() / 255)
    history = train(model, d, TrainConfig(epochs=1, batch_size=30, lr=1e-12, **QUIET))
    assert history.train["loss"][0] == pytest.approx(expected.item(), rel=1e-4)


def test_float_data_in_unit_range_is_accepted():
    d = data(64, 16)
    floats = SimpleNamespace(x_train=d.x_train.float() / 255, x_test=d.x_test.float() / 255)
    set_seed(0)
    a = train(Autoencoder(), d, TrainConfig(epochs=2, **QUIET))
    set_seed(0)
    b = train(Autoencoder(), floats, TrainConfig(epochs=2, **QUIET))
    assert a.train["loss"] == pytest.approx(b.train["loss"], rel=1e-5)


def test_training_without_a_test_set():
    history = train(Autoencoder(), SimpleNamespace(x_train=blobs(64)), TrainConfig(epochs=1, **QUIET))
    assert history.test == {} and len(history.train["loss"]) == 1


def test_progress_prints_one_line_per_epoch(capsys):
    train(Autoencoder(), data(64, 16), TrainConfig(epochs=3, device="cpu"))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3") and "test:" in lines[-1]


@pytest.mark.parametrize("config, message", [
    (TrainConfig(epochs=0), r"epochs=0: must be a whole number >= 1"),
    (TrainConfig(batch_size=0), r"batch_size=0: must be a whole number >= 1"),
    (TrainConfig(lr=0.0), r"lr=0.0"),
])
def test_bad_config_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        train(Autoencoder(), data(16, 4), config)


@pytest.mark.parametrize("x_train, message", [
    (torch.zeros(0, 784, dtype=torch.uint8), r"data.x_train is empty"),
    (torch.zeros(8, 1, 28, 28, dtype=torch.uint8), r"shape \(N, 784\), got \(8, 1, 28, 28\); flatten"),
    (torch.full((8, 784), 255.0), r"values in \[255, 255\].*divide raw pixels by 255"),
    (torch.zeros(8, 784, dtype=torch.int32), r"dtype torch.int32"),
])
def test_bad_data_is_refused(x_train, message):
    with pytest.raises(ValueError, match=message):
        train(Autoencoder(), SimpleNamespace(x_train=x_train, x_test=None), TrainConfig(**QUIET))


def test_data_without_images_is_refused():
    with pytest.raises(ValueError, match="data.x_train must be a torch.Tensor"):
        train(Autoencoder(), object(), TrainConfig(**QUIET))


def test_nan_loss_stops_training_and_names_epoch_and_step():
    class Exploding(Autoencoder):
        calls = 0

        def loss(self, x, validate=True):
            loss, parts = super().loss(x, validate)
            Exploding.calls += 1
            if Exploding.calls == 7:  # step 3 of the second epoch (4 steps per epoch)
                loss = loss * float("nan")
            return loss, parts

    set_seed(0)
    model = Exploding()
    with pytest.raises(FloatingPointError, match=r"became nan at epoch 2, step 3 of 4.*start of epoch 2"):
        # 4 train steps per epoch; with no test set the loss is called only in training
        train(model, SimpleNamespace(x_train=blobs(128)), TrainConfig(epochs=3, batch_size=32, **QUIET))
    assert all(torch.isfinite(p).all() for p in model.parameters()), "weights must be restored"


def test_history_round_trips_through_a_dict():
    history = History(train={"loss": [2.0, 1.0]}, test={"loss": [2.5, 1.5]}, seconds=[0.1, 0.1])
    assert History.from_dict(history.to_dict()) == history
