"""Figures the chapters draw: rows of 28x28 digits, weight rows shown as 28x28 filters, and codes
coloured by digit.

Labels are English or math on purpose: Colab has no CJK font.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_images(x, side: int = 28) -> np.ndarray:
    x = torch.as_tensor(x).detach().float().cpu()
    if x.max() > 1:  # raw uint8 pixels
        x = x / 255
    return x.reshape(-1, side, side).numpy()  # (n, side, side)


def show_rows(rows: dict, n: int = 10, title: str | None = None, side: int = 28):
    """One row of `n` images per entry of `rows` ({"original": x, "reconstruction": x_hat}).

    Each value is a tensor of shape (>= n, side * side) or (>= n, side, side), in [0, 1] or 0-255.
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        images = _as_images(images[:n], side)
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_grid(images, nrow: int, side: int = 28, pad: int = 1) -> np.ndarray:
    """Tile (n, side*side) images into one (rows * side, nrow * side) array for imshow."""
    images = _as_images(images, side)
    n = len(images)
    ncol = nrow
    nrows = int(np.ceil(n / ncol))
    grid = np.ones((nrows * (side + pad) - pad, ncol * (side + pad) - pad))
    for i, image in enumerate(images):
        r, c = divmod(i, ncol)
        grid[r * (side + pad): r * (side + pad) + side, c * (side + pad): c * (side + pad) + side] = image
    return grid


def scatter_codes(codes, labels, ax=None, title: str | None = None):
    """A 2-D scatter of codes (n, 2) coloured by digit label, with a legend."""
    import matplotlib.pyplot as plt

    codes = torch.as_tensor(codes).detach().cpu().numpy()
    labels = torch.as_tensor(labels).cpu().numpy()
    ax = ax or plt.gca()
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8,
                        vmin=-0.5, vmax=9.5)
    ax.legend(*points.legend_elements(), title="digit", loc="best", fontsize=7, markerscale=0.8)
    if title:
        ax.set_title(title)
    return ax


def show_filters(weights, nrow: int = 8, ax=None, title: str | None = None, side: int = 28,
                 pad: int = 1):
    """Rows of a weight matrix (n, side*side) as side x side images on one red-blue scale.

    Each filter is divided by its own largest |w|, so the pattern shows rather than the norm:
    red pixels excite the unit (w > 0), blue ones inhibit it, white ones are ignored. Grey lines
    separate the filters. Returns the axes.
    """
    import matplotlib.pyplot as plt

    w = torch.as_tensor(weights).detach().float().cpu().reshape(len(weights), -1)  # (n, side*side)
    w = w / w.abs().amax(1, keepdim=True).clamp_min(1e-12)  # each filter in [-1, 1]
    w = w.reshape(-1, side, side).numpy()
    nrows = int(np.ceil(len(w) / nrow))
    grid = np.full((nrows * (side + pad) - pad, nrow * (side + pad) - pad), np.nan)  # nan = padding
    for i, image in enumerate(w):
        top, left = (side + pad) * (i // nrow), (side + pad) * (i % nrow)
        grid[top: top + side, left: left + side] = image
    ax = ax or plt.gca()
    ax.imshow(grid, cmap=plt.get_cmap("RdBu_r").with_extremes(bad="0.6"), vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax
