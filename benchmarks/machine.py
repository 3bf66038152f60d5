"""The machine a benchmark ran on, and how fast it multiplies matrices.

`describe()` names the CPU, the cores, torch's threads, the GPU if any and the current load;
`matmul_gflops()` measures float32 matrix-multiply throughput, the ceiling that the trainers'
achieved GFLOP/s are compared with. Run alone: `python benchmarks/machine.py`.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> dict:
    """The 1-minute load average and the share of the CPU that other processes use right now."""
    import psutil

    busy = psutil.cpu_percent(interval=0.5)  # % of all cores, every process
    return {"loadavg_1min": round(os.getloadavg()[0], 2), "cpu_busy_percent": busy}


def describe() -> dict:
    import psutil

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **load(),
    }
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(m: int, k: int, n: int, device: str | torch.device = "cpu",
                  seconds: float = 1.0, repeats: int = 5) -> float:
    """Median GFLOP/s of (m, k) @ (k, n) in float32, each repeat running for about `seconds`."""
    device = torch.device(device)
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    out = torch.empty(m, n, device=device)
    torch.mm(a, b, out=out)  # warm-up: first call picks the kernel
    _sync(device)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.1:  # calibrate: calls per repeat
        torch.mm(a, b, out=out)
        calls += 1
    _sync(device)
    calls = max(1, int(calls * seconds / (time.perf_counter() - start)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        _sync(device)
        rates.append(2 * m * k * n * calls / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def matmul_report(device: str | torch.device = "cpu") -> dict:
    """Large square products (the machine's ceiling) and the shapes the benchmark's models use."""
    shapes = {
        "2048x2048x2048": (2048, 2048, 2048),
        "128x784x400 (VAE layer 1, batch 128)": (128, 784, 400),
        "128x784x128 (AE layer 1, batch 128)": (128, 784, 128),
    }
    return {name: round(matmul_gflops(*shape, device=device), 1) for name, shape in shapes.items()}


if __name__ == "__main__":
    print(json.dumps({"machine": describe(), "matmul_gflops": matmul_report()}, indent=2))
