"""The book's four autoencoders, each answering `loss, parts = model.loss(x)`.

Every model takes images as float rows `x` of shape (B, input_dim) with values in [0, 1] and
returns `loss`, the batch mean of a per-image loss summed over pixels, and `parts`, a dict of
per-image means of each term. One trainer therefore trains all four. Equation labels in the
comments name the equations of the chapters that derive them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_images(x: torch.Tensor, input_dim: int, values: bool = True) -> None:
    """Raise a ValueError naming the problem and the fix unless x is float (B, input_dim) in [0, 1].

    The range check reads the tensor back to the host (one device sync), so the trainer, which
    validates its dataset once on entry, calls the models with `validate=False`.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of shape (B, {input_dim}), got {type(x).__name__}; "
                         "convert with torch.as_tensor(x, dtype=torch.float32)")
    if x.dim() != 2 or x.shape[1] != input_dim:
        shape = tuple(x.shape)
        fix = "call x.flatten(1)" if x.dim() > 2 and math.prod(shape[1:]) == input_dim else (
            f"pass a batch of rows of {input_dim} values")
        raise ValueError(f"expected x of shape (B, {input_dim}) with values in [0, 1], "
                         f"got {shape}; {fix}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor with values in [0, 1], got dtype {x.dtype}; "
                         "convert raw pixels with x.float() / 255")
    if values and x.numel():
        low, high = x.min().item(), x.max().item()
        if low < 0 or high > 1 or math.isnan(low) or math.isnan(high):
            fix = ("divide raw 0-255 pixels by 255" if high > 1 and low >= 0 else
                   "scale the images into [0, 1] (for example undo a Normalize transform)")
            raise ValueError(f"expected values in [0, 1], got values in [{low:g}, {high:g}]; {fix}")


def mlp(sizes: list[int], activation: type[nn.Module] | None) -> nn.Sequential:
    """Linear layers through `sizes`, with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if activation is not None and i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """x -> z -> x_hat with the summed squared error, eq. (ae-min).

    Defaults follow the seed: 784-128-32 with ReLU between layers and a sigmoid on x_hat.
    The code z itself is linear by default (`code_activation=None`); the seed's ReLU on z
    (`code_activation="relu"`) lets code units die and reconstructs worse.
    `linear=True` removes every nonlinearity, including the output sigmoid: the model whose
    optimum spans the same subspace as PCA (Baldi & Hornik, 1989).
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int | None = 128, code_dim: int = 32,
                 code_activation: str | None = None, linear: bool = False):
        super().__init__()
        if code_activation not in (None, "relu", "sigmoid"):
            raise ValueError(f"code_activation={code_activation!r}; use None, 'relu' or 'sigmoid'")
        self.hparams = dict(input_dim=input_dim, hidden_dim=hidden_dim, code_dim=code_dim,
                            code_activation=code_activation, linear=linear)
        self.input_dim, self.code_dim, self.linear = input_dim, code_dim, linear
        hidden = [hidden_dim] if hidden_dim else []
        activation = None if linear else nn.ReLU
        self.encoder = mlp([input_dim, *hidden, code_dim], activation)
        if code_activation and not linear:
            self.encoder.append(nn.ReLU() if code_activation == "relu" else nn.Sigmoid())
        self.decoder = mlp([code_dim, *hidden[::-1], input_dim], activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, code_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)  # (B, input_dim)
        return logits if self.linear else torch.sigmoid(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor, validate: bool = True) -> tuple[torch.Tensor, dict]:
        check_images(x, self.input_dim, values=validate)
        x_hat = self(x)
        recon = (x_hat - x).pow(2).sum(-1).mean()  # ||x - x_hat||^2 per image, eq. (ae-min)
        return recon, {"recon": recon.detach()}


def kl_bernoulli(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)), elementwise, eq. (sparse-kl)."""
    # rho_hat is a mean of sigmoids, so it lies in (0, 1) exactly but can round to 0 or 1 in
    # float32; the clamp only keeps the logarithms finite.
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


class SparseAutoencoder(nn.Module):
    """One sigmoid hidden layer h, with a penalty that keeps each unit's mean activation near rho.

    loss = sum_pixels (x - x_hat)^2 + beta * sum_j KL(rho || rho_hat_j), eq. (sparse-loss),
    where rho_hat_j is the batch mean of unit j. Both terms are per image (the KL term does not
    depend on the image, it is a property of the batch), so beta weighs a KL against a *summed*
    squared error. `penalty="l1"` replaces the KL term by beta * sum_j |h_j|.
    """

    def __init__(self, input_dim: int = 784, code_dim: int = 64, rho: float = 0.05,
                 beta: float = 3.0, penalty: str = "kl"):
        super().__init__()
        if not 0 < rho < 1:
            raise ValueError(f"rho={rho}: the target activation must lie strictly between 0 and 1")
        if beta < 0:
            raise ValueError(f"beta={beta}: the penalty weight must be >= 0")
        if penalty not in ("kl", "l1"):
            raise ValueError(f"penalty={penalty!r}; use 'kl' or 'l1'")
        self.hparams = dict(input_dim=input_dim, code_dim=code_dim, rho=rho, beta=beta,
                            penalty=penalty)
        self.input_dim, self.code_dim = input_dim, code_dim
        self.rho, self.beta, self.penalty = rho, beta, penalty
        self.encoder = nn.Linear(input_dim, code_dim)
        self.decoder = nn.Linear(code_dim, input_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))  # h, (B, code_dim), each unit in (0, 1)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(h))  # x_hat, (B, input_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor, validate: bool = True) -> tuple[torch.Tensor, dict]:
        check_images(x, self.input_dim, values=validate)
        h = self.encode(x)
        recon = (self.decode(h) - x).pow(2).sum(-1).mean()
        if self.penalty == "kl":
            rho_hat = h.mean(0)  # (code_dim,), mean activation of each unit over the batch
            sparsity = kl_bernoulli(self.rho, rho_hat).sum()  # eq. (sparse-kl)
        else:
            sparsity = h.abs().sum(-1).mean()  # L1 alternative, eq. (sparse-l1)
        loss = recon + self.beta * sparsity  # eq. (sparse-loss)
        return loss, {"recon": recon.detach(), "sparsity": sparsity.detach()}


class DenoisingAutoencoder(Autoencoder):
    """An Autoencoder trained to map a corrupted x_tilde back to the clean x, eq. (dae-loss).

    noise="gaussian": x_tilde = clip(x + noise_std * eps, 0, 1), eps ~ N(0, I). The clip keeps
    x_tilde a valid image (the seed's unclipped noise pushes pixels outside [0, 1]).
    noise="mask": each pixel is set to 0 with probability mask_prob.
    The model draws its own noise; pass `noise` (eps for "gaussian", uniform u in [0, 1) for
    "mask") to make `corrupt` and `loss` deterministic in tests.
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int | None = 128, code_dim: int = 32,
                 code_activation: str | None = None, noise: str = "gaussian",
                 noise_std: float = 0.3, mask_prob: float = 0.3):
        super().__init__(input_dim, hidden_dim, code_dim, code_activation)
        if noise not in ("gaussian", "mask"):
            raise ValueError(f"noise={noise!r}; use 'gaussian' or 'mask'")
        if noise_std < 0 or not 0 <= mask_prob < 1:
            raise ValueError(f"noise_std={noise_std}, mask_prob={mask_prob}: need noise_std >= 0 "
                             "and 0 <= mask_prob < 1")
        self.hparams.update(noise=noise, noise_std=noise_std, mask_prob=mask_prob)
        del self.hparams["linear"]
        self.noise, self.noise_std, self.mask_prob = noise, noise_std, mask_prob

    def corrupt(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_tilde ~ q(x_tilde | x), eq. (dae-corrupt)."""
        if self.noise == "gaussian":
            eps = torch.randn_like(x) if noise is None else noise
            return (x + self.noise_std * eps).clamp(0, 1)
        u = torch.rand_like(x) if noise is None else noise
        return x * (u >= self.mask_prob)

    def loss(self, x: torch.Tensor, noise: torch.Tensor | None = None,
             validate: bool = True) -> tuple[torch.Tensor, dict]:
        check_images(x, self.input_dim, values=validate)
        if noise is not None and noise.shape != x.shape:
            raise ValueError(f"noise must have the shape of x, {tuple(x.shape)}; "
                             f"got {tuple(noise.shape)}")
        x_hat = self(self.corrupt(x, noise))
        recon = (x_hat - x).pow(2).sum(-1).mean()  # target is the clean x, eq. (dae-loss)
        return recon, {"recon": recon.detach()}


class VAE(nn.Module):
    """Variational autoencoder: q(z|x) = N(mu, diag(exp(logvar))), p(z) = N(0, I).

    `loss` is the one-sample Monte-Carlo estimate of the negative ELBO per image, in nats:
    parts["recon"] = -log p(x|z) and parts["kl"] = KL(q(z|x) || p(z)), eq. (vae-loss).

    likelihood="bernoulli": p(x|z) = prod_i Bernoulli(x_i; x_hat_i), i.e. the binary
    cross-entropy summed over pixels (for grey values strictly inside (0, 1) this is the usual
    MNIST practice, not a normalized density).
    likelihood="gaussian": p(x|z) = N(x; x_hat, sigma^2 I), as in the seed with sigma = 1.
    The constant (D/2) log(2 pi sigma^2), which depends on neither x_hat nor z, is dropped,
    so "recon" is sum (x - x_hat)^2 / (2 sigma^2).
    beta weighs the KL term (beta-VAE); with beta != 1 the loss is no longer the negative ELBO.
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int = 200, latent_dim: int = 20,
                 likelihood: str = "gaussian", sigma: float = 1.0, beta: float = 1.0):
        super().__init__()
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood={likelihood!r}; use 'gaussian' or 'bernoulli'")
        if sigma <= 0 or beta < 0:
            raise ValueError(f"sigma={sigma}, beta={beta}: need sigma > 0 and beta >= 0")
        self.hparams = dict(input_dim=input_dim, hidden_dim=hidden_dim, latent_dim=latent_dim,
                            likelihood=likelihood, sigma=sigma, beta=beta)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.likelihood, self.sigma, self.beta = likelihood, sigma, beta
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = mlp([latent_dim, hidden_dim, input_dim], nn.ReLU)  # outputs logits

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # (B, hidden_dim)
        return self.to_mu(h), self.to_logvar(h)  # (B, latent_dim) each

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       eps: torch.Tensor | None = None) -> torch.Tensor:
        eps = torch.randn_like(mu) if eps is None else eps
        return mu + torch.exp(0.5 * logvar) * eps  # z, (B, latent_dim), eq. (vae-reparam)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # x_hat, (B, input_dim), in [0, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction through the posterior mean (no sampling)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, (B,) (without the Gaussian's constant, see the class)."""
        logits = self.decoder(z)
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        return -(x - torch.sigmoid(logits)).pow(2).sum(-1) / (2 * self.sigma ** 2)

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp(logvar)) || N(0, I)) per image, (B,); Kingma & Welling 2014, app. B."""
        return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)  # eq. (vae-kl)

    def loss(self, x: torch.Tensor, eps: torch.Tensor | None = None,
             validate: bool = True) -> tuple[torch.Tensor, dict]:
        check_images(x, self.input_dim, values=validate)
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, eps)
        recon = -self.log_likelihood(x, z).mean()
        kl = self.kl(mu, logvar).mean()
        loss = recon + self.beta * kl  # negative ELBO for beta = 1, eq. (vae-loss)
        return loss, {"recon": recon.detach(), "kl": kl.detach()}

    def iwae_bound(self, x: torch.Tensor, k: int, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The K-sample importance-weighted bound per image, (B,), in nats (Burda et al., 2016).

        IWAE_K = log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), with z_1..z_K drawn from q(z|x),
        computed with logsumexp. IWAE_1 is an unbiased estimate of the ELBO; the bound rises with
        K towards log p(x), eq. (vae-iwae). With likelihood="gaussian", log p(x|z) is the same
        constant-free value as `log_likelihood`, so the bound, like `loss`, omits the constant
        (D/2) log(2 pi sigma^2). Pass eps of shape (K, B, latent_dim) to fix the noise.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k={k!r}: the number of importance samples must be a whole number >= 1")
        check_images(x, self.input_dim, values=False)
        mu, logvar = self.encode(x)  # (B, d) each
        eps = torch.randn(k, *mu.shape, dtype=mu.dtype, device=mu.device) if eps is None else eps
        if eps.shape != (k, *mu.shape):
            raise ValueError(f"eps must have shape (k, B, latent_dim) = {(k, *mu.shape)}, "
                             f"got {tuple(eps.shape)}")
        z = self.reparameterize(mu, logvar, eps)  # (K, B, d)
        # log q(z|x) - log p(z); the 2 pi terms of the two Gaussians cancel.
        log_q_minus_log_p = 0.5 * (z.pow(2) - eps.pow(2) - logvar).sum(-1)  # (K, B)
        # Decode in chunks of about 4M pixels so that a large K fits in memory.
        chunk = max(1, 4_000_000 // max(1, x.numel()))
        log_lik = torch.cat([self.log_likelihood(x.expand(len(zc), *x.shape), zc)
                             for zc in z.split(chunk)])  # (K, B)
        log_w = log_lik - log_q_minus_log_p  # log importance weights, (K, B)
        return torch.logsumexp(log_w, dim=0) - math.log(k)  # eq. (vae-iwae)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images decoded from z ~ p(z) = N(0, I): (n, input_dim) means of p(x|z)."""
        device = self.to_mu.weight.device
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return self.decode(z)
