"""The trainer holds the dataset once, as uint8: no float copy of a split, no copy per epoch.

A TorchDispatchMode sees every tensor that any aten op creates inside `train` (forward, backward,
Adam, evaluation) and keeps those as large as a whole split. Batches are far smaller than a
split, so anything that large is a copy of the data. The same watch catches a loop that does
`x.float() / 255`, which shows the test can fail.
"""
from types import SimpleNamespace

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from replearn import Autoencoder, TrainConfig, set_seed, train


class LargeTensors(TorchDispatchMode):
    """Records op, dtype, shape and device of every new tensor with at least `numel` elements.

    benchmarks/memory.py loads this class from here, so the benchmark reports what this test asserts.
    """

    def __init__(self, numel):
        super().__init__()
        self.numel, self.created = numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            # views and in-place results share an input's storage: they allocate nothing
            if (isinstance(t, torch.Tensor) and t.numel() >= self.numel
                    and t.untyped_storage().data_ptr() not in inputs):
                self.created.append({"op": str(func), "dtype": str(t.dtype).replace("torch.", ""),
                                     "shape": list(t.shape), "device": str(t.device)})
        return out


def pixels(n, seed):
    return torch.randint(0, 256, (n, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


DATA = SimpleNamespace(x_train=pixels(256, 0), x_test=pixels(160, 1))
CONFIG = TrainConfig(epochs=2, batch_size=32, eval_batch_size=32, device="cpu", progress=False)
# The smaller split. Every batch has at most 32 rows, and the largest weight (and its gradient
# and Adam state) has 784 x 128 elements, fewer than this.
SPLIT = 160 * 784
assert SPLIT > max(p.numel() for p in Autoencoder().parameters())


def test_train_makes_no_copy_of_the_data():
    set_seed(0)
    with LargeTensors(SPLIT) as watch:
        history = train(Autoencoder(), DATA, CONFIG)
    assert len(history.seconds) == CONFIG.epochs
    assert watch.created == [], f"train copied a whole split: {watch.created}"


def test_the_watch_sees_a_float_copy_per_epoch():
    def naive(model, data, config):
        optimizer = torch.optim.Adam(model.parameters())
        for _ in range(config.epochs):
            x = data.x_train.float() / 255  # the copy train must not make
            for start in range(0, len(x), config.batch_size):
                loss, _ = model.loss(x[start:start + config.batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    set_seed(0)
    with LargeTensors(SPLIT) as watch:
        naive(Autoencoder(), DATA, CONFIG)
    assert len(watch.created) == 2 * CONFIG.epochs  # .float() and / 255, each epoch
    assert all(c["dtype"] == "float32" for c in watch.created)
