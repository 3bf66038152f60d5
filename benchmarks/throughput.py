"""Throughput: `replearn.train` against the standard PyTorch loop, on the same model and data.

The standard loop is the one the seed text and pytorch/examples use: `torchvision.datasets.MNIST`
(each image becomes a PIL image, then `ToTensor()` and a flatten), a `DataLoader(batch_size=128,
shuffle=True)`, Adam, and a test pass over a `DataLoader(batch_size=128)` after each epoch. Here
torchvision reads IDX files written from the very uint8 tensors that `replearn.train` gets, so
both loops see the same images. Both loops call the same `model.loss(x)` (without its range
check, which the standard loop would otherwise pay on every batch), with the same threads.

Runs alternate (standard, standard with 2 workers, replearn, standard, ...) with a new seed per
round, and every figure is a median over the rounds; all of it at torch's default number of
threads and again at one thread (which other jobs on the same cores disturb far less). A
profile of replearn.train says where its time goes. Run alone:
`python benchmarks/throughput.py [--epochs 5] [--repeats 5] [--threads 2 1]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from machine import matmul_report
from replearn import VAE, Autoencoder, TrainConfig, load_mnist, pick_device, set_seed, train

MODELS = {
    "AE 784-128-32": lambda: Autoencoder(784, 128, 32),
    "VAE 784-400-20 Bernoulli": lambda: VAE(784, 400, 20, likelihood="bernoulli"),
}
TARGETS = {"cpu": {"AE 784-128-32": 4.0, "VAE 784-400-20 Bernoulli": 5.0}, "cuda": 20.0}
LOSS_TOLERANCE = 0.01  # "equal" test loss: within 1 %, less than the spread between seeds
NOISY_SPREAD = 1.5  # slowest / fastest run of one loop above this: the machine was too busy


# ---------------------------------------------------------------- the standard loop (a)

def write_idx(data, root: Path) -> None:
    """Write the four MNIST IDX files of `data` where torchvision.datasets.MNIST looks for them."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte": data.x_train.reshape(-1, 28, 28),
        "train-labels-idx1-ubyte": data.y_train,
        "t10k-images-idx3-ubyte": data.x_test.reshape(-1, 28, 28),
        "t10k-labels-idx1-ubyte": data.y_test,
    }
    for name, tensor in files.items():
        array = tensor.numpy().astype(np.uint8)
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
            int(size).to_bytes(4, "big") for size in array.shape)
        (raw / name).write_bytes(header + array.tobytes())


def torchvision_mnist(root: Path):
    """The seed's datasets: torchvision's MNIST with ToTensor and a flatten to 784."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Lambda(lambda x: x.view(-1)),  # flatten to 784, as in the seed
    ])
    return (datasets.MNIST(root, train=True, download=False, transform=transform),
            datasets.MNIST(root, train=False, download=False, transform=transform))


def standard_train(model: nn.Module, train_set, test_set, epochs: int, batch_size: int = 128,
                   lr: float = 1e-3, num_workers: int = 0, device: torch.device | None = None) -> dict:
    """pytorch/examples' loop: DataLoader batches, Adam, `loss.item()` per step, a test pass per epoch.

    Also returns `data_seconds`, the time spent waiting for the DataLoader's next batch.
    """
    device = device or pick_device()
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True,
                                               num_workers=num_workers)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size, shuffle=False,
                                              num_workers=num_workers)
    waited = [0.0]
    train_losses, test_losses = [], []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for x, _ in clocked(train_loader, waited):
            x = x.to(device)
            loss, _ = model.loss(x, validate=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        train_losses.append(total / len(train_set))
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, _ in clocked(test_loader, waited):
                x = x.to(device)
                total += model.loss(x, validate=False)[0].item() * len(x)
        test_losses.append(total / len(test_set))
    return {"train_loss": train_losses, "test_loss": test_losses, "data_seconds": waited[0]}


def clocked(loader, waited: list[float]):
    """Yield the loader's batches, adding the time spent waiting for each to waited[0]."""
    batches = iter(loader)
    while True:
        start = time.perf_counter()
        batch = next(batches, None)
        waited[0] += time.perf_counter() - start
        if batch is None:
            return
        yield batch


# ---------------------------------------------------------------- measuring

def matmul_flops(model: nn.Module, input_dim: int = 784) -> tuple[int, int]:
    """Matrix-multiply FLOPs per image: (one training step, one test forward pass).

    Each nn.Linear(in, out) costs 2*in*out forward, 2*in*out for the weight gradient, and
    2*in*out for the input gradient unless its input needs none (the layer that reads x).
    Elementwise work (activations, the loss, Adam) is not counted.
    """
    train_flops, eval_flops = 0, 0

    def count(layer, inputs, _output):
        nonlocal train_flops, eval_flops
        flops = 2 * layer.in_features * layer.out_features
        eval_flops += flops
        train_flops += flops * (3 if inputs[0].requires_grad else 2)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        model.loss(torch.rand(1, input_dim, device=next(model.parameters()).device), validate=False)
    finally:
        for hook in hooks:
            hook.remove()
    return train_flops, eval_flops


def timed(fn) -> tuple[object, float, float]:
    """Run fn(); return its result, the wall seconds and the process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def where_time_goes(make, data, epochs: int = 2) -> dict:
    """Profile replearn.train (torch.profiler): shares of the run in matmuls, Adam, the rest."""
    from torch.profiler import ProfilerActivity, profile

    set_seed(0)
    model = make()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        train(model, data, TrainConfig(epochs=epochs, progress=False))
        wall = time.perf_counter() - start
    ops = prof.key_averages()
    self_total = sum(e.self_cpu_time_total for e in ops) / 1e6
    matmul = sum(e.self_cpu_time_total for e in ops if e.key in ("aten::mm", "aten::addmm")) / 1e6
    adam = sum(e.cpu_time_total for e in ops if e.key.startswith("Optimizer.step")) / 1e6
    trainer = sum(e.self_cpu_time_total for e in ops if e.key in (
        "aten::index_select", "aten::randperm", "aten::stack", "aten::cat")) / 1e6
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:8]
    return {"profiled_seconds": wall,
            "share_matmul": matmul / self_total, "share_adam": adam / self_total,
            "share_batching_and_bookkeeping": trainer / self_total,
            "share_rest": 1 - (matmul + adam + trainer) / self_total,
            "top_ops": [[e.key, e.self_cpu_time_total / 1e6 / self_total] for e in top]}


def measure(data, train_set, test_set, device, epochs: int, repeats: int, loops: list[str],
            peak: float) -> dict:
    """Alternated, timed runs of every loop on every model, at the current torch threads."""
    n_train, n_test = len(data.x_train), len(data.x_test)

    def one_run(loop: str, make, seed: int, run_epochs: int):
        set_seed(seed)
        model = make()
        if loop == "replearn":
            config = TrainConfig(epochs=run_epochs, batch_size=128, seed=seed, progress=False)
            history = train(model, data, config)
            return {"test_loss": history.test["loss"], "data_seconds": 0.0}
        workers = 2 if "workers" in loop else 0
        return standard_train(model, train_set, test_set, run_epochs, num_workers=workers,
                              device=device)

    results = {}
    for name, make in MODELS.items():
        train_flops, eval_flops = matmul_flops(make())
        flops_per_run = epochs * (n_train * train_flops + n_test * eval_flops)
        for loop in loops:  # warm-up: lazy initialisation, page cache, kernel choice
            one_run(loop, make, seed=0, run_epochs=1)
        runs = {loop: [] for loop in loops}
        for seed in range(repeats):
            for loop in loops:  # a b c a b c ...: drifts in the machine's load hit every loop
                loadavg = os.getloadavg()[0]
                out, wall, cpu = timed(lambda: one_run(loop, make, seed, epochs))
                runs[loop].append({"seed": seed, "seconds": wall, "cpu_seconds": cpu,
                                   "data_seconds": out["data_seconds"], "loadavg_1min": loadavg,
                                   "test_loss": out["test_loss"][-1]})
        summary = {}
        for loop, rs in runs.items():
            seconds = statistics.median(r["seconds"] for r in rs)
            losses = [r["test_loss"] for r in rs]
            summary[loop] = {
                "samples_per_second": epochs * n_train / seconds,
                "seconds": seconds,
                "data_share": statistics.median(r["data_seconds"] / r["seconds"] for r in rs),
                "cpu_per_wall": statistics.median(r["cpu_seconds"] / r["seconds"] for r in rs),
                "gflops": flops_per_run / seconds / 1e9,
                "fraction_of_matmul_peak": flops_per_run / seconds / 1e9 / peak,
                "test_loss": statistics.median(losses),
                "test_loss_range": [min(losses), max(losses)],
                "spread": max(r["seconds"] for r in rs) / min(r["seconds"] for r in rs),
                "runs": rs,
            }
        standard, fast = summary["standard"], summary["replearn"]
        ratio = fast["samples_per_second"] / standard["samples_per_second"]
        pair_ratios = [s["seconds"] / r["seconds"] for s, r in zip(runs["standard"], runs["replearn"])]
        target = TARGETS["cuda"] if device.type == "cuda" else TARGETS["cpu"][name]
        loss_ok = fast["test_loss"] <= standard["test_loss"] * (1 + LOSS_TOLERANCE)
        results[name] = {
            "loops": summary,
            "speedup": ratio,
            "speedup_pairs_median": statistics.median(pair_ratios),
            "speedup_pairs_range": [min(pair_ratios), max(pair_ratios)],
            # the speedup from a free data pipeline alone, if the model's own work stayed the same
            "speedup_if_data_were_free": 1 / (1 - standard["data_share"]),
            # the speedup if replearn ran every FLOP at the matmul peak and did nothing else
            "speedup_ceiling_at_peak": standard["seconds"] / (flops_per_run / (peak * 1e9)),
            "target": target,
            # same work, different times: other jobs on the cores, not the code, set the figures
            "noisy": max(loop["spread"] for loop in summary.values()) > NOISY_SPREAD,
            "loss_equal_or_better": loss_ok,
            "met": ratio >= target and loss_ok,
            "matmul_flops_per_train_image": train_flops,
            "matmul_flops_per_test_image": eval_flops,
            "replearn_profile": where_time_goes(make, data),
        }
    return results


def run(epochs: int = 5, repeats: int = 5, workers_variant: bool = True, threads=None,
        data=None) -> dict:
    """Measure at each torch thread count in `threads` (default: torch's, then 1)."""
    data = data or load_mnist()
    device = pick_device()
    default_threads = torch.get_num_threads()
    threads = threads or sorted({default_threads, 1}, reverse=True)
    loops = ["standard", *(["standard, 2 workers"] if workers_variant else []), "replearn"]
    by_threads, matmul = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        write_idx(data, Path(tmp))
        train_set, test_set = torchvision_mnist(Path(tmp))
        assert torch.equal(train_set.data.reshape(len(data.x_train), -1), data.x_train)
        try:
            for n in threads:
                torch.set_num_threads(n)
                matmul[str(n)] = matmul_report(device)
                peak = next(iter(matmul[str(n)].values()))  # the large square product
                by_threads[str(n)] = measure(data, train_set, test_set, device, epochs, repeats,
                                             loops, peak)
        finally:
            torch.set_num_threads(default_threads)
    return {
        "device": str(device),
        "default_threads": default_threads,
        "epochs": epochs,
        "repeats": repeats,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
        "data_source": data.source,
        "loss_tolerance": LOSS_TOLERANCE,
        "matmul_gflops": matmul,  # by threads
        "threads": by_threads,  # by threads: model -> results
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-workers-variant", action="store_true")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts to measure (default: torch's, then 1)")
    args = parser.parse_args(argv)
    out = run(args.epochs, args.repeats, workers_variant=not args.no_workers_variant,
              threads=args.threads)
    for threads, models in out["threads"].items():
        for name, r in models.items():
            for loop, s in r["loops"].items():
                print(f"{threads} thr  {name:26s} {loop:20s} {s['samples_per_second']:8.0f} img/s "
                      f"{s['gflops']:6.1f} GFLOP/s  data {100 * s['data_share']:3.0f} %  "
                      f"test loss {s['test_loss']:.3f}")
            print(f"{threads} thr  {name:26s} speedup {r['speedup']:.2f}x (target {r['target']:g}x), "
                  f"met={r['met']}; profile {json.dumps(r['replearn_profile']['top_ops'][:4])}")


if __name__ == "__main__":
    main()
