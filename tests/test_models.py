"""The four models: shapes, each loss against a hand computation, and clear errors on bad input."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from replearn import VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder, set_seed
from replearn.models import kl_bernoulli

B, D = 5, 784
MODELS = [
    lambda: Autoencoder(),
    lambda: SparseAutoencoder(),
    lambda: DenoisingAutoencoder(),
    lambda: DenoisingAutoencoder(noise="mask"),
    lambda: VAE(),
    lambda: VAE(likelihood="bernoulli"),
]


@pytest.fixture
def x():
    set_seed(0)
    return torch.rand(B, D)


@pytest.mark.parametrize("make", MODELS)
def test_shapes_and_parts(make, x):
    model = make()
    x_hat = model(x)
    assert x_hat.shape == (B, D)
    assert 0 <= x_hat.min() and x_hat.max() <= 1
    loss, parts = model.loss(x)
    assert loss.shape == () and torch.isfinite(loss)
    assert "recon" in parts and all(p.shape == () for p in parts.values())


def test_code_shapes(x):
    assert Autoencoder(code_dim=7).encode(x).shape == (B, 7)
    h = SparseAutoencoder(code_dim=9).encode(x)
    assert h.shape == (B, 9) and (h > 0).all() and (h < 1).all()
    mu, logvar = VAE(latent_dim=3).encode(x)
    assert mu.shape == logvar.shape == (B, 3)
    assert VAE(latent_dim=3).decode(torch.zeros(2, 3)).shape == (2, D)
    assert VAE(latent_dim=3).sample(4).shape == (4, D)


def test_autoencoder_loss_is_batch_mean_of_summed_squared_error(x):
    model = Autoencoder()
    loss, parts = model.loss(x)
    x_hat = model(x)
    by_hand = sum(((x[i] - x_hat[i]) ** 2).sum() for i in range(B)) / B
    assert torch.allclose(loss, by_hand)
    assert torch.allclose(loss, F.mse_loss(x_hat, x) * D)  # 784 times nn.MSELoss's mean
    assert torch.allclose(parts["recon"], loss)


def test_linear_autoencoder_has_no_nonlinearity():
    model = Autoencoder(hidden_dim=None, code_dim=3, linear=True)
    a, b = torch.rand(2, D), torch.rand(2, D)
    # affine: f(a + b) - f(b) = f(a) - f(0)
    lhs = model(a + b) - model(b)
    rhs = model(a) - model(torch.zeros(2, D))
    assert torch.allclose(lhs, rhs, atol=1e-5)


def test_sparse_penalty_matches_formula(x):
    model = SparseAutoencoder(code_dim=6, rho=0.1, beta=2.5)
    loss, parts = model.loss(x)
    h = model.encode(x)
    rho, rho_hat = 0.1, h.mean(0)
    kl = sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r))
             for r in rho_hat.tolist())
    recon = ((model.decode(h) - x) ** 2).sum(1).mean()
    assert parts["sparsity"].item() == pytest.approx(kl, rel=1e-5)
    assert loss.item() == pytest.approx(recon.item() + 2.5 * kl, rel=1e-5)


def test_kl_bernoulli_is_zero_at_target_and_positive_elsewhere():
    assert kl_bernoulli(0.05, torch.tensor([0.05])).item() == pytest.approx(0, abs=1e-7)
    assert (kl_bernoulli(0.05, torch.tensor([0.01, 0.2, 0.9])) > 0).all()


def test_l1_penalty(x):
    model = SparseAutoencoder(penalty="l1", beta=0.5)
    _, parts = model.loss(x)
    assert parts["sparsity"].item() == pytest.approx(model.encode(x).sum(1).mean().item(), rel=1e-5)


def test_denoising_corrupts_the_input_and_targets_the_clean_image(x):
    model = DenoisingAutoencoder(noise_std=0.5)
    eps = torch.randn(B, D)
    x_tilde = model.corrupt(x, eps)
    assert torch.allclose(x_tilde, (x + 0.5 * eps).clamp(0, 1))
    loss, _ = model.loss(x, noise=eps)
    assert torch.allclose(loss, ((model(x_tilde) - x) ** 2).sum(1).mean())
    # the target is the clean x: with another target the loss differs
    assert not torch.allclose(loss, ((model(x_tilde) - x_tilde) ** 2).sum(1).mean())


def test_masking_noise_zeroes_pixels_with_the_given_probability(x):
    model = DenoisingAutoencoder(noise="mask", mask_prob=0.25)
    u = torch.rand(B, D)
    assert torch.equal(model.corrupt(x, u), torch.where(u < 0.25, 0.0, x))
    set_seed(1)
    dropped = (model.corrupt(torch.ones(200, D)) == 0).float().mean().item()
    assert dropped == pytest.approx(0.25, abs=0.01)


def test_denoising_noise_of_the_wrong_shape_is_refused(x):
    with pytest.raises(ValueError, match="noise must have the shape of x"):
        DenoisingAutoencoder().loss(x, noise=torch.randn(B, 10))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_vae_loss_by_hand(likelihood, x):
    model = VAE(latent_dim=4, likelihood=likelihood, sigma=0.5)
    eps = torch.randn(B, 4)
    loss, parts = model.loss(x, eps=eps)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    x_hat = model.decode(z)
    if likelihood == "gaussian":
        recon = ((x - x_hat) ** 2).sum(1) / (2 * 0.5 ** 2)
    else:
        recon = -(x * torch.log(x_hat) + (1 - x) * torch.log(1 - x_hat)).sum(1)
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)
    assert torch.allclose(parts["recon"], recon.mean(), rtol=1e-4)
    assert torch.allclose(parts["kl"], kl.mean(), rtol=1e-5)
    assert torch.allclose(loss, recon.mean() + kl.mean(), rtol=1e-4)


def test_vae_kl_matches_torch_distributions_and_monte_carlo():
    set_seed(0)
    mu, logvar = torch.randn(3, 6), torch.randn(3, 6)
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    closed = VAE.kl(mu, logvar)
    assert torch.allclose(closed, kl_divergence(q, p).sum(1), rtol=1e-5)
    z = q.sample((200_000,))  # (S, 3, 6)
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.02)


def test_vae_beta_weighs_only_the_kl(x):
    eps = torch.randn(B, 20)
    set_seed(0)
    plain = VAE()
    set_seed(0)
    weighted = VAE(beta=4.0)
    _, parts = plain.loss(x, eps=eps)
    loss, _ = weighted.loss(x, eps=eps)
    assert torch.allclose(loss, parts["recon"] + 4.0 * parts["kl"], rtol=1e-5)


@pytest.mark.parametrize("make", MODELS)
def test_bad_shape_names_the_fix(make):
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 784\).*got \(2, 1, 28, 28\); call x.flatten\(1\)"):
        make().loss(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"got \(2, 100\)"):
        make().loss(torch.rand(2, 100))


@pytest.mark.parametrize("make", MODELS)
def test_integer_pixels_are_refused(make):
    with pytest.raises(ValueError, match=r"dtype torch.uint8.*x.float\(\) / 255"):
        make().loss(torch.randint(0, 256, (2, D), dtype=torch.uint8))


@pytest.mark.parametrize("make", MODELS)
def test_raw_pixel_values_are_refused(make):
    with pytest.raises(ValueError, match=r"values in \[0, 255\]; divide raw 0-255 pixels by 255"):
        make().loss(torch.randint(0, 256, (2, D)).float().index_fill_(1, torch.tensor([0]), 255))
    with pytest.raises(ValueError, match=r"values in \[-1, 1\]; scale the images into \[0, 1\]"):
        make().loss(torch.linspace(-1, 1, 2 * D).reshape(2, D))


def test_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="rho"):
        SparseAutoencoder(rho=1.5)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="noise"):
        DenoisingAutoencoder(noise="salt")
