"""Memory: peak resident memory of a training run, and whether the trainer copies the dataset.

1. Peak RSS. Each run is a fresh Python process (`--child`), which imports, loads the data, notes
   its RSS, resets the kernel's peak-RSS mark (VmHWM) and trains: the peak during training, and
   how much it exceeds the RSS before, are what training costs.
2. The dataset lives once on the device, as uint8. `DatasetCopyWatch` sees every tensor that any
   aten op creates during `train` (a `TorchDispatchMode`, so it works on every device) and keeps
   those with at least as many elements as a whole split. `train` may create one uint8 copy of each
   split when the data is not already on its device, and nothing else that large: no float copy,
   and no copy per epoch. A naive loop (`x.float() / 255` per epoch) is run under the same watch to
   show that the check can fail.
Run alone: `python benchmarks/memory.py`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

from replearn import VAE, Autoencoder, TrainConfig, load_mnist, pick_device, set_seed, train
from throughput import standard_train, torchvision_mnist, write_idx

MODELS = {"ae": lambda: Autoencoder(784, 128, 32),
          "vae": lambda: VAE(784, 400, 20, likelihood="bernoulli")}
MB = 2**20


def _load_watch():
    """The test's watch (tests/test_train_memory.py): one copy, so report and test check the same."""
    path = Path(__file__).resolve().parents[1] / "tests" / "test_train_memory.py"
    spec = importlib.util.spec_from_file_location("test_train_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LargeTensors


DatasetCopyWatch = _load_watch()  # records every new tensor of at least `numel` elements


def naive_train(model, data, config: TrainConfig) -> None:
    """The copy the trainer must not make: the whole split as floats, every epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    for _ in range(config.epochs):
        x = data.x_train.float() / 255  # (N, 784) float32: 4x the uint8 bytes, once per epoch
        for start in range(0, len(x), config.batch_size):
            loss, _ = model.loss(x[start:start + config.batch_size], validate=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def watch_copies(data, trainer=train, epochs: int = 3, device: str = "auto") -> dict:
    """Train under the watch; report the large tensors created and whether that is acceptable."""
    config = TrainConfig(epochs=epochs, batch_size=128, eval_batch_size=256, device=device,
                         progress=False)
    target = pick_device(device)
    # Every batch (train or test) has at most 256 rows; a split has at least min(N_train, N_test).
    rows = min(len(data.x_train), len(data.x_test))
    assert rows > max(config.batch_size, config.eval_batch_size), "the splits must exceed a batch"
    set_seed(0)
    model = Autoencoder()
    with DatasetCopyWatch(numel=rows * 784) as watch:
        trainer(model, data, config)
    floats = [c for c in watch.created if not c["dtype"].startswith(("uint8", "int", "bool"))]
    moves = 0 if data.x_train.device == target else 2  # x_train and x_test, once each
    return {"epochs": epochs, "threshold_rows": rows, "created": watch.created,
            "float_copies": len(floats), "allowed_uint8_copies": moves,
            "ok": not floats and len(watch.created) <= moves}


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM = peak RSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB  # the kernel reports kB
    raise KeyError(field)


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux >= 4.0: writing 5 to clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(loop: str, model_name: str, epochs: int, n_train: int) -> dict:
    """Runs in a fresh process: RSS before training and the peak during it (one line of JSON).

    The peak is reset after imports, data and model, since importing alone peaks higher than
    a small training run (torch.optim pulls in torch._dynamo the first time an optimizer is
    made; the standard loop imports torchvision). Both loops import both first.
    """
    import torch._dynamo  # noqa: F401
    import torchvision  # noqa: F401

    torch.optim.Adam(Autoencoder().parameters())  # the optimizer's own first-use imports
    if n_train:  # a full-MNIST-sized set of random images (no network needed)
        g = torch.Generator().manual_seed(0)
        data = SimpleNamespace(x_train=torch.randint(0, 256, (n_train, 784), dtype=torch.uint8, generator=g),
                               x_test=torch.randint(0, 256, (10_000, 784), dtype=torch.uint8, generator=g),
                               y_train=torch.zeros(n_train, dtype=torch.int64),
                               y_test=torch.zeros(10_000, dtype=torch.int64), source="random")
    else:
        data = load_mnist(source="subset")
    set_seed(0)
    model = MODELS[model_name]()
    before = status_mb("VmRSS")
    reset_peak_rss()
    if loop == "standard":  # its datasets (torchvision keeps its own uint8 copy) count as its cost
        with tempfile.TemporaryDirectory() as tmp:
            write_idx(data, Path(tmp))
            train_set, test_set = torchvision_mnist(Path(tmp))
        standard_train(model, train_set, test_set, epochs)
    else:
        train(model, data, TrainConfig(epochs=epochs, progress=False))
    peak = status_mb("VmHWM")
    dataset = data.x_train.numel() + data.x_test.numel()
    return {"loop": loop, "model": model_name, "epochs": epochs, "n_train": len(data.x_train),
            "peak_rss_mb": peak, "rss_before_training_mb": before,
            "added_by_training_mb": peak - before,
            "dataset_uint8_mb": dataset / MB, "dataset_float32_mb": 4 * dataset / MB}


def peak_rss(loop: str, model_name: str, epochs: int, n_train: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", loop, "--model", model_name,
           "--epochs", str(epochs), "--n-train", str(n_train)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict:
    data = load_mnist(source="subset")
    runs = [peak_rss(loop, name, epochs=3) for name in MODELS for loop in ("replearn", "standard")]
    runs += [peak_rss(loop, "ae", epochs=1, n_train=60_000) for loop in ("replearn", "standard")]
    trainer_check = watch_copies(data)
    naive_check = watch_copies(data, trainer=naive_train)
    result = {
        "peak_rss": runs,
        "dataset_once_uint8": trainer_check,
        "naive_loop_under_same_check": {k: naive_check[k] for k in ("float_copies", "ok")},
        "check_can_fail": not naive_check["ok"],
        "met": trainer_check["ok"] and not naive_check["ok"],
    }
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        set_seed(0)
        train(Autoencoder(), data, TrainConfig(epochs=2, progress=False, device="cuda"))
        result["cuda_peak_allocated_mb"] = (torch.cuda.max_memory_allocated() - base) / MB
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["replearn", "standard"])
    parser.add_argument("--model", choices=list(MODELS), default="ae")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.model, args.epochs, args.n_train)))
        return
    result = run()
    print(json.dumps(result, indent=1))
    if not result["dataset_once_uint8"]["ok"]:
        sys.exit("train copied the dataset: " + json.dumps(result["dataset_once_uint8"]["created"]))


if __name__ == "__main__":
    main()
