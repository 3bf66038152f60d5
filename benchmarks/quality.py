"""Quality: do the book's models learn what the chapters say they learn?

On the offline subset (and on full MNIST when its files are on disk):
- the autoencoder's test error against PCA with as many components as the code has (target:
  the AE's error at most 0.9 x PCA's), for the chapter's settings and two others;
- the denoising autoencoder's PSNR on noisy test images at sigma = 0.3 and 0.5, against the PSNR
  of the noisy input itself (target: >= 18 dB at sigma = 0.3);
- the sparse autoencoder's mean hidden activation against its target rho;
- the VAE's test negative ELBO in nats after 10 and 50 epochs.
Run alone: `python benchmarks/quality.py [--full]`.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from replearn import (VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder, TrainConfig,
                      load_mnist, set_seed, train)

AE_TARGET = 0.9  # AE test error / PCA test error
PSNR_TARGET = {0.3: 18.0}  # dB
NOISE_SEED = 1234  # the test noise, the same for every model


def images(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255  # (N, 784) in [0, 1]


def pca_error(x_train: torch.Tensor, x_test: torch.Tensor, k: int) -> float:
    """Test squared error per image (summed over pixels) of PCA with k components fit on x_train."""
    train64, test64 = x_train.double(), x_test.double()
    mean = train64.mean(0)
    _, _, vt = torch.linalg.svd(train64 - mean, full_matrices=False)
    basis = vt[:k]  # (k, 784), the top principal directions
    x_hat = (test64 - mean) @ basis.T @ basis + mean  # (N, 784)
    return (x_hat - test64).pow(2).sum(-1).mean().item()


@torch.no_grad()
def reconstruction_error(model, x: torch.Tensor) -> float:
    model.eval()
    return (model(x) - x).pow(2).sum(-1).mean().item()


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE) in dB (pixels in [0, 1], so the peak is 1)."""
    mse = (x_hat - x).pow(2).mean(-1).clamp_min(1e-10)  # (N,); clamp: a perfect image is not inf
    return (10 * torch.log10(1 / mse)).mean().item()


def fit(model, data, config: TrainConfig):
    start = time.perf_counter()
    history = train(model, data, config)
    return history, time.perf_counter() - start


def autoencoder_vs_pca(data, epochs: int) -> dict:
    x_test = images(data.x_test)
    pca = pca_error(images(data.x_train), x_test, k=32)
    settings = {  # name -> (model, config); the first is the chapter's
        f"Autoencoder(), epochs={epochs}, batch_size=64 (chapter default)":
            (lambda: Autoencoder(), TrainConfig(epochs=epochs, batch_size=64, progress=False)),
        f"Autoencoder(), epochs={epochs}, batch_size=128":
            (lambda: Autoencoder(), TrainConfig(epochs=epochs, batch_size=128, progress=False)),
        "Autoencoder(), epochs=10, batch_size=128 (the seed's budget)":
            (lambda: Autoencoder(), TrainConfig(epochs=10, batch_size=128, progress=False)),
        f"Autoencoder(code_activation='relu'), epochs={epochs}, batch_size=64 (the seed's ReLU code)":
            (lambda: Autoencoder(code_activation="relu"),
             TrainConfig(epochs=epochs, batch_size=64, progress=False)),
    }
    rows, models = {}, {}
    for name, (make, config) in settings.items():
        set_seed(0)
        model = make()
        _, seconds = fit(model, data, config)
        error = reconstruction_error(model, x_test)
        rows[name] = {"test_sse": error, "test_mse_per_pixel": error / 784,
                      "ratio_to_pca": error / pca, "met": error <= AE_TARGET * pca,
                      "train_seconds": seconds}
        models[name] = model
    chapter = next(iter(rows))
    return {"pca32_test_sse": pca, "pca32_test_mse_per_pixel": pca / 784, "target_ratio": AE_TARGET,
            "settings": rows, "chapter_setting": chapter, "met": rows[chapter]["met"]}, models[chapter]


def denoising(data, epochs: int, plain_ae) -> dict:
    x = images(data.x_test)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    rows = {}
    for sigma in (0.3, 0.5):
        set_seed(0)
        model = DenoisingAutoencoder(noise_std=sigma)
        _, seconds = fit(model, data, TrainConfig(epochs=epochs, batch_size=64, progress=False))
        model.eval()
        with torch.no_grad():
            x_tilde = model.corrupt(x, eps)  # clip(x + sigma * eps, 0, 1), eq. (dae-corrupt)
            denoised = psnr(model(x_tilde), x)
            plain = psnr(plain_ae(x_tilde), x)
        target = PSNR_TARGET.get(sigma)
        rows[f"{sigma}"] = {"noisy_input_psnr": psnr(x_tilde, x), "dae_psnr": denoised,
                            "plain_ae_psnr": plain, "target_db": target,
                            "met": None if target is None else denoised >= target,
                            "train_seconds": seconds}
    return {"sigma": rows, "config": f"DenoisingAutoencoder(noise_std=sigma), epochs={epochs}, "
                                     "batch_size=64; plain AE = the chapter's Autoencoder"}


def sparsity(data, epochs: int, betas=(3.0, 10.0, 30.0)) -> dict:
    """Mean activation against rho for SparseAutoencoder()'s beta (the first) and larger ones."""
    x = images(data.x_test)
    rows = {}
    for beta in betas:
        set_seed(0)
        model = SparseAutoencoder(beta=beta)
        _, seconds = fit(model, data, TrainConfig(epochs=epochs, batch_size=64, progress=False))
        model.eval()
        with torch.no_grad():
            rho_hat = model.encode(x).mean(0)  # (code_dim,), each unit's mean activation on the test set
        rho = model.rho
        rows[f"{beta:g}"] = {
            "mean_activation": rho_hat.mean().item(),
            "median_unit_activation": rho_hat.median().item(),
            "min_unit_activation": rho_hat.min().item(), "max_unit_activation": rho_hat.max().item(),
            "units_within_2x_of_rho": ((rho_hat >= rho / 2) & (rho_hat <= 2 * rho)).float().mean().item(),
            "test_sse": reconstruction_error(model, x), "train_seconds": seconds}
    default = SparseAutoencoder()
    return {"config": f"SparseAutoencoder(beta=beta) (code_dim={default.code_dim}, rho={default.rho}; "
                      f"default beta={default.beta:g}), epochs={epochs}, batch_size=64",
            "rho": default.rho, "default_beta": f"{default.beta:g}", "beta": rows}


def vae_elbo(data, epochs: int = 50, checkpoints=(10, 50)) -> dict:
    set_seed(0)
    model = VAE(784, 400, 20, likelihood="bernoulli")
    history, seconds = fit(model, data, TrainConfig(epochs=epochs, batch_size=128, progress=False))
    return {"config": "VAE(784, 400, 20, likelihood='bernoulli'), batch_size=128, lr=1e-3",
            "negative_elbo_nats": {str(e): history.test["loss"][e - 1] for e in checkpoints if e <= epochs},
            "recon_nats": {str(e): history.test["recon"][e - 1] for e in checkpoints if e <= epochs},
            "kl_nats": {str(e): history.test["kl"][e - 1] for e in checkpoints if e <= epochs},
            "train_seconds": seconds,
            "note": "one-sample estimate per test image, averaged over the test set"}


def run_on(data) -> dict:
    epochs = 50 if len(data.x_train) < 10_000 else 10  # the chapters' rule
    ae, chapter_ae = autoencoder_vs_pca(data, epochs)
    return {
        "data": {"source": data.source, "n_train": len(data.x_train), "n_test": len(data.x_test)},
        "autoencoder_vs_pca": ae,
        "denoising": denoising(data, epochs, chapter_ae),
        "sparse": sparsity(data, epochs),
        "vae": vae_elbo(data, epochs=50),
    }


def run(full: bool = True) -> dict:
    results = {"subset": run_on(load_mnist(source="subset"))}
    if full:
        try:
            data = load_mnist(source="full")
        except RuntimeError as err:  # no files on disk and no network
            reason = str(err).splitlines()[0].split(" (")[0]
            results["full"] = {"skipped": f"full MNIST not available ({reason}: no MNIST files on "
                                          "disk and no network), so only the subset was measured"}
        else:
            results["full"] = run_on(data)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-full", action="store_true", help="skip full MNIST even if available")
    args = parser.parse_args(argv)
    print(json.dumps(run(full=not args.no_full), indent=1))


if __name__ == "__main__":
    main()
