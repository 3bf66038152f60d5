"""The linear-Gaussian latent-variable model (probabilistic PCA), where everything is exact.

    z ~ N(0, I_d),    x | z ~ N(G z + c, sigma^2 I_D)

It has the VAE's prior and a Gaussian decoder, but the decoder is linear, so log p(x), the
posterior p(z|x) and the ELBO of any Gaussian q(z) have closed forms. Chapter 4 uses it to check
by running them the identities it derives for the VAE: ELBO <= log p(x), the gap equals
KL(q || p(z|x)), and the gap closes when q is the true posterior (Tipping & Bishop, 1999, write
W for G). Everything is computed in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class LinearGaussian:
    G: torch.Tensor  # (D, d) decoding matrix
    c: torch.Tensor  # (D,) decoding bias, the mean of x
    sigma: float  # standard deviation of the noise on x

    def __post_init__(self):
        self.G = torch.as_tensor(self.G, dtype=torch.float64)
        self.c = torch.as_tensor(self.c, dtype=torch.float64)
        if self.G.dim() != 2 or self.c.shape != (self.G.shape[0],):
            raise ValueError(f"expected G of shape (D, d) and c of shape (D,), got "
                             f"{tuple(self.G.shape)} and {tuple(self.c.shape)}")
        if not self.sigma > 0:
            raise ValueError(f"sigma={self.sigma}: the noise standard deviation must be > 0")

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, sigma: float = 0.5,
               generator: torch.Generator | None = None) -> "LinearGaussian":
        """A model with standard-normal G and c, for experiments and tests."""
        G = torch.randn(data_dim, latent_dim, generator=generator, dtype=torch.float64)
        c = torch.randn(data_dim, generator=generator, dtype=torch.float64)
        return cls(G, c, sigma)

    @property
    def data_dim(self) -> int:
        return self.G.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.G.shape[1]

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"expected x of shape (B, {self.data_dim}), got {tuple(x.shape)}; "
                             "pass a batch of rows (x[None] for a single point)")
        return x

    def sample(self, n: int, generator: torch.Generator | None = None):
        """n draws (x, z) from the model: x (n, D), z (n, d)."""
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=torch.float64)
        return z @ self.G.T + self.c + self.sigma * noise, z

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per row, (B,): x ~ N(c, G G^T + sigma^2 I) once z is integrated out."""
        x = self._rows(x)
        cov = self.G @ self.G.T + self.sigma ** 2 * torch.eye(self.data_dim, dtype=torch.float64)
        L = torch.linalg.cholesky(cov)  # (D, D)
        r = torch.linalg.solve_triangular(L, (x - self.c).T, upper=False)  # (D, B) = L^-1 (x - c)
        log_det = 2 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.data_dim * math.log(2 * math.pi) + log_det + r.pow(2).sum(0))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z|x) = N(mean, cov): mean (B, d), and cov (d, d), the same for every x.

        cov = (I + G^T G / sigma^2)^-1 and mean = cov G^T (x - c) / sigma^2 (Bayes' rule for
        a Gaussian prior and a linear-Gaussian likelihood).
        """
        x = self._rows(x)
        precision = torch.eye(self.latent_dim, dtype=torch.float64) + self.G.T @ self.G / self.sigma ** 2
        cov = torch.linalg.inv(precision)  # (d, d)
        mean = (x - self.c) @ self.G @ cov / self.sigma ** 2  # (B, d); cov is symmetric
        return mean, cov

    def elbo(self, x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        """The ELBO of q(z) = N(mean, cov) per row, (B,), in closed form.

        ELBO = E_q[log p(x|z)] - KL(q || N(0, I)), with
        E_q[log p(x|z)] = -D/2 log(2 pi sigma^2) - (||x - G m - c||^2 + tr(G S G^T)) / (2 sigma^2)
        KL = (tr S + ||m||^2 - d - log det S) / 2.
        mean is (B, d); cov is (d, d) (shared) or (B, d, d); a diagonal q passes torch.diag(var).
        """
        x = self._rows(x)
        m = torch.as_tensor(mean, dtype=torch.float64)
        S = torch.as_tensor(cov, dtype=torch.float64).expand(len(x), self.latent_dim, self.latent_dim)
        if m.shape != (len(x), self.latent_dim):
            raise ValueError(f"expected mean of shape ({len(x)}, {self.latent_dim}), got {tuple(m.shape)}")
        D, d, s2 = self.data_dim, self.latent_dim, self.sigma ** 2
        residual = (x - m @ self.G.T - self.c).pow(2).sum(-1)  # (B,)
        spread = torch.einsum("ij,bjk,ik->b", self.G, S, self.G)  # tr(G S G^T), (B,)
        expected_log_lik = -0.5 * D * math.log(2 * math.pi * s2) - (residual + spread) / (2 * s2)
        trace = torch.diagonal(S, dim1=-2, dim2=-1).sum(-1)
        kl = 0.5 * (trace + m.pow(2).sum(-1) - d - torch.logdet(S))
        return expected_log_lik - kl
