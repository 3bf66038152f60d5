"""show_filters draws each weight row as one image, scaled to its own largest |w|."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from replearn.plots import show_filters


def test_show_filters_tiles_and_scales_each_filter():
    weights = torch.randn(5, 784) * torch.tensor([1.0, 10.0, 0.1, 3.0, 7.0])[:, None]
    fig, ax = plt.subplots()
    assert show_filters(weights, nrow=3, ax=ax, title="W") is ax
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (2 * 29 - 1, 3 * 29 - 1)  # 2 rows of 3 filters, 1-pixel padding
    first = np.asarray(grid[:28, :28])
    np.testing.assert_allclose(np.abs(first).max(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(first, (weights[0] / weights[0].abs().max()).view(28, 28).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert np.isnan(np.asarray(grid[28, :])).all()  # padding between rows
    assert np.isnan(np.asarray(grid[29:, 2 * 29:])).all()  # the empty sixth slot
    assert ax.get_title() == "W"
    plt.close(fig)
