from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raylight.core.errors import ConfigError
from raylight.ssl.config import DataConfig
from raylight.ssl.datasets import dataset_info, load_dataset, split_arrays, split_indices


def test_digits_split_is_stratified_disjoint_and_seeded() -> None:
    cfg = DataConfig(test_fraction=0.2)
    ds = load_dataset(cfg)
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32 and 0 <= ds.x.min() and ds.x.max() <= 1
    train, test = split_indices(cfg, "train"), split_indices(cfg, "test")
    assert not set(train) & set(test) and len(train) + len(test) == 1797
    frac = np.bincount(ds.y[test], minlength=10) / np.bincount(ds.y, minlength=10)
    assert np.all(np.abs(frac - 0.2) < 0.03)
    assert np.array_equal(split_indices(DataConfig(split_seed=0), "test"), test)
    assert not np.array_equal(split_indices(DataConfig(split_seed=1), "test"), test)


def test_label_fraction_keeps_every_class() -> None:
    cfg = DataConfig(label_fraction=0.02)
    idx = split_indices(cfg, "labelled")
    y = load_dataset(cfg).y[idx]
    assert set(y.tolist()) == set(range(10)) and len(idx) < 0.03 * 1437 + 10
    assert set(idx) <= set(split_indices(cfg, "train"))
    info = dataset_info(cfg)
    assert info.num_labelled == len(idx) and info.num_classes == 10 and info.sample_shape == (1, 8, 8)


def test_user_npz_npy_and_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (40, 6, 6), dtype=np.uint8), y=np.arange(40) % 2)
    ds = load_dataset(DataConfig(dataset=str(tmp_path / "d.npz")))
    assert ds.x.shape == (40, 1, 6, 6) and ds.x.max() <= 1 and ds.num_classes == 2
    np.save(tmp_path / "v.npy", rng.normal(size=(30, 5)).astype(np.float32))
    vec = load_dataset(DataConfig(dataset=str(tmp_path / "v.npy")))
    assert vec.x.shape == (30, 5) and not vec.labelled
    x, _ = split_arrays(DataConfig(dataset=str(tmp_path / "v.npy")), "test")
    assert len(x) == 6
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    imgs = load_dataset(DataConfig(dataset=str(tmp_path / "imgs"), image_size=8))
    assert imgs.x.shape == (6, 1, 8, 8) and imgs.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_unknown_dataset_and_bad_npz_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a built-in"):
        load_dataset(DataConfig(dataset=str(tmp_path / "missing")))
    np.savez(tmp_path / "bad.npz", a=np.zeros(3))
    with pytest.raises(ConfigError, match="'x'"):
        load_dataset(DataConfig(dataset=str(tmp_path / "bad.npz")))


def test_parquet_features_and_label_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"f0": [0.0, 1.0, 2.0], "f1": [1.0, 1.0, 0.0], "label": [0, 1, 1]}), tmp_path / "t.parquet")
    ds = load_dataset(DataConfig(dataset=str(tmp_path / "t.parquet")))
    assert ds.x.shape == (3, 2) and ds.x.dtype == np.float32
    assert ds.y.tolist() == [0, 1, 1]
    pq.write_table(pa.table({"label": [0, 1]}), tmp_path / "only_label.parquet")
    with pytest.raises(ConfigError, match="no feature columns"):
        load_dataset(DataConfig(dataset=str(tmp_path / "only_label.parquet")))
