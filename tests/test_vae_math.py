"""The mathematics of chapter 4 checked by running it: the Gaussian KL, the ELBO and its gap on an
exact linear-Gaussian model, reparameterized vs score-function gradients, and the IWAE bound."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from replearn import VAE, set_seed
from replearn.linear_gaussian import LinearGaussian


def tiny_vae(likelihood="bernoulli", latent_dim=2, **kw):
    set_seed(0)
    return VAE(input_dim=6, hidden_dim=8, latent_dim=latent_dim, likelihood=likelihood, **kw).double()


# --- the closed-form KL, eq. (vae-kl) --------------------------------------------------------

def test_gaussian_kl_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 3, generator=g, dtype=torch.float64)
    closed = VAE.kl(mu, logvar)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(closed, kl_divergence(q, p).sum(-1))
    z = q.sample((200_000,))  # (S, B, d)
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (S, B)
    monte_carlo = log_ratio.mean(0)
    stderr = log_ratio.std(0) / math.sqrt(len(z))
    assert ((closed - monte_carlo).abs() < 4 * stderr).all()
    assert (closed >= 0).all()
    assert VAE.kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0  # q = prior


# --- the linear-Gaussian model: exact log p(x), posterior and ELBO ----------------------------

@pytest.fixture
def lg():
    return LinearGaussian.random(data_dim=4, latent_dim=2, sigma=0.5,
                                 generator=torch.Generator().manual_seed(1))


def test_linear_gaussian_log_marginal_and_posterior_by_quadrature():
    # with d = 1 the integral over z can be done on a grid
    model = LinearGaussian.random(3, 1, sigma=0.7, generator=torch.Generator().manual_seed(2))
    x, _ = model.sample(2, generator=torch.Generator().manual_seed(3))
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)  # (Z,)
    log_joint = (Normal(model.c + z[:, None, None] * model.G[:, 0], model.sigma).log_prob(x).sum(-1)
                 + Normal(0.0, 1.0).log_prob(z)[:, None])  # (Z, B)
    dz = z[1] - z[0]
    log_px = torch.logsumexp(log_joint, 0) + torch.log(dz)
    assert torch.allclose(model.log_marginal(x), log_px, atol=1e-6)
    weights = torch.softmax(log_joint, 0)  # p(z|x) on the grid
    mean_grid = (weights * z[:, None]).sum(0)
    var_grid = (weights * (z[:, None] - mean_grid) ** 2).sum(0)
    mean, cov = model.posterior(x)
    assert torch.allclose(mean[:, 0], mean_grid, atol=1e-6)
    assert torch.allclose(cov[0, 0].expand(2), var_grid, atol=1e-6)


def test_linear_gaussian_elbo_matches_monte_carlo(lg):
    x, _ = lg.sample(3, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(5)
    m = torch.randn(3, 2, generator=g, dtype=torch.float64)
    A = torch.randn(2, 2, generator=g, dtype=torch.float64)
    S = A @ A.T + 0.1 * torch.eye(2, dtype=torch.float64)
    q = MultivariateNormal(m, S)
    z = q.sample((100_000,))  # (S, B, d)
    log_w = (Normal(z @ lg.G.T + lg.c, lg.sigma).log_prob(x).sum(-1)
             + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z))  # (S, B)
    stderr = log_w.std(0) / math.sqrt(len(z))
    assert ((lg.elbo(x, m, S) - log_w.mean(0)).abs() < 4 * stderr).all()


def test_elbo_gap_is_kl_to_posterior_and_closes_at_posterior(lg):
    x, _ = lg.sample(5, generator=torch.Generator().manual_seed(6))
    log_px = lg.log_marginal(x)
    post_mean, post_cov = lg.posterior(x)
    g = torch.Generator().manual_seed(7)
    for _ in range(3):  # random Gaussian q's, full and diagonal
        m = post_mean + torch.randn(5, 2, generator=g, dtype=torch.float64)
        var = torch.rand(2, generator=g, dtype=torch.float64) + 0.05
        for S in (torch.diag(var), post_cov + torch.diag(var)):
            elbo = lg.elbo(x, m, S)
            gap = kl_divergence(MultivariateNormal(m, S), MultivariateNormal(post_mean, post_cov))
            assert (elbo < log_px).all()
            assert torch.allclose(log_px - elbo, gap, atol=1e-10)
    assert torch.allclose(lg.elbo(x, post_mean, post_cov), log_px, atol=1e-10)
    # the best diagonal q (mean-field: variances 1 / diagonal of the posterior precision) leaves
    # a gap whenever the posterior is correlated
    mean_field = torch.diag(1 / torch.linalg.inv(post_cov).diagonal())
    assert (log_px - lg.elbo(x, post_mean, mean_field) > 1e-6).all()


def test_linear_gaussian_rejects_bad_shapes(lg):
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        lg.log_marginal(torch.zeros(4))
    with pytest.raises(ValueError, match="mean of shape"):
        lg.elbo(torch.zeros(2, 4), torch.zeros(2, 3), torch.eye(2))
    with pytest.raises(ValueError, match="sigma"):
        LinearGaussian(torch.zeros(4, 2), torch.zeros(4), 0.0)


# --- gradients: reparameterization vs score function ----------------------------------------

def test_reparameterized_gradient_has_smaller_variance_than_score_function():
    # d/dmu E_{z ~ N(mu, sigma^2 I)} ||z - a||^2 = 2 (mu - a), estimated both ways
    set_seed(0)
    d, S = 10, 20_000
    mu, sigma, a = torch.full((d,), 0.5), 1.0, torch.ones(d)
    eps = torch.randn(S, d)
    z = mu + sigma * eps
    f = (z - a).pow(2).sum(-1, keepdim=True)  # (S, 1)
    reparam = 2 * (z - a)  # grad_z f at z = mu + sigma * eps
    score = f * eps / sigma  # f(z) * grad_mu log q(z)
    exact = 2 * (mu - a)
    for g in (reparam, score):
        assert ((g.mean(0) - exact).abs() < 5 * g.std(0) / math.sqrt(S)).all()  # both unbiased
    assert (score.var(0) > 10 * reparam.var(0)).all()
    # autograd through VAE.reparameterize gives the reparameterized estimator
    mu_param = mu.clone().requires_grad_()
    z_auto = VAE(latent_dim=d).reparameterize(mu_param, torch.zeros(d), eps[0])
    (z_auto - a).pow(2).sum().backward()
    assert torch.allclose(mu_param.grad, reparam[0])


# --- the importance-weighted bound, eq. (vae-iwae) -------------------------------------------

def exact_log_px_1d(model, x):
    """log p(x) of a VAE with a 1-D latent by quadrature over z."""
    z = torch.linspace(-10, 10, 20_001, dtype=torch.float64)[:, None]  # (Z, 1)
    log_lik = torch.stack([model.log_likelihood(xi.expand(len(z), -1), z) for xi in x], 1)
    log_joint = log_lik + Normal(0.0, 1.0).log_prob(z)  # (Z, B)
    return torch.logsumexp(log_joint, 0) + torch.log(z[1, 0] - z[0, 0])


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_iwae_between_elbo_and_log_px_and_rising_with_k(likelihood):
    model = tiny_vae(likelihood, latent_dim=1, sigma=0.3)
    with torch.no_grad():  # a sharp decoder and an encoder whose q(z|x) is off: a wide gap
        for p in model.decoder.parameters():
            p.mul_(3)
        model.to_mu.bias.add_(2)
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        log_px = exact_log_px_1d(model, x)
        set_seed(1)
        elbo = -torch.stack([model.loss(x)[0] for _ in range(2000)]).mean()  # batch mean
        draws = {k: torch.stack([model.iwae_bound(x, k) for _ in range(400)]) for k in (1, 4, 32)}
    bound = {k: v.mean(0) for k, v in draws.items()}  # (B,) averaged over repeats
    stderr = {k: v.std(0) / math.sqrt(len(v)) for k, v in draws.items()}
    # IWAE_1 is an unbiased estimate of the ELBO
    assert abs(bound[1].mean() - elbo) < 4 * stderr[1].pow(2).mean().sqrt() / math.sqrt(3)
    assert (bound[1] + 4 * stderr[1] < bound[4]).all() and (bound[4] + 4 * stderr[4] < bound[32]).all()
    assert (bound[32] <= log_px + 4 * stderr[32]).all()
    assert (log_px - bound[32] < 0.2 * (log_px - bound[1])).all()  # most of the gap closed


def test_iwae_with_given_noise_matches_hand_computation():
    model = tiny_vae("bernoulli", latent_dim=2)
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = torch.randn(1, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * eps[0]
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)
    logits = model.decoder(z)
    log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    by_hand = log_lik + p.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
    assert torch.allclose(model.iwae_bound(x, 1, eps), by_hand)
    # K copies of the same sample: the average of K equal weights is that weight
    assert torch.allclose(model.iwae_bound(x, 7, eps.expand(7, -1, -1)), by_hand)
    with pytest.raises(ValueError, match="k="):
        model.iwae_bound(x, 0)
    with pytest.raises(ValueError, match="eps must have shape"):
        model.iwae_bound(x, 2, eps)


# --- the loss: the seed's factor 2 and the beta-VAE view of sigma ----------------------------

def test_seed_loss_is_twice_the_negative_elbo_without_constant():
    set_seed(0)
    model = VAE(likelihood="gaussian", sigma=1.0)
    x, eps = torch.rand(8, 784), torch.randn(8, 20)
    mu, logvar = model.encode(x)
    x_hat = model.decode(model.reparameterize(mu, logvar, eps))
    sigma = torch.exp(0.5 * logvar)
    seed_l1 = F.mse_loss(x_hat, x, reduction="sum")
    seed_l2 = -torch.sum(1 + torch.log(sigma ** 2) - mu ** 2 - sigma ** 2)
    seed_loss = (seed_l1 + seed_l2) / len(x)
    assert torch.allclose(seed_loss, 2 * model.loss(x, eps)[0], rtol=1e-5)


def test_gaussian_sigma_is_a_beta_vae_with_beta_two_sigma_squared():
    set_seed(0)
    sigma = 0.3
    model = VAE(likelihood="gaussian", sigma=sigma)
    unit_sse = VAE(likelihood="gaussian", sigma=2 ** -0.5, beta=2 * sigma ** 2)  # recon = SSE
    unit_sse.load_state_dict(model.state_dict())
    x, eps = torch.rand(8, 784), torch.randn(8, 20)
    assert torch.allclose(2 * sigma ** 2 * model.loss(x, eps)[0], unit_sse.loss(x, eps)[0], rtol=1e-5)
