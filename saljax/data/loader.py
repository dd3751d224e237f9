"""Reading built datasets with Grain: random access by index, so step k's batch is always the
same batch (exact resume), sharded by JAX process for multi-host runs."""
from __future__ import annotations

import os

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from saljax.data.errors import DataError


def _open_splits(path: str) -> dict:
    """``{split: random-access source}`` of a dataset built at ``path`` (a TFDS version dir)."""
    if not os.path.exists(os.path.join(path, "dataset_info.json")):
        raise DataError(f"{path}: no complete dataset here (an interrupted build leaves none; "
                        "run saljax data build)")
    builder = tfds.builder_from_directory(path)
    return {split: builder.as_data_source(split) for split in builder.info.splits}


def image_size(path: str) -> int:
    """The side in pixels of the images of the dataset built at ``path``."""
    if not os.path.exists(os.path.join(path, "dataset_info.json")):
        raise DataError(f"{path}: no complete dataset here (run saljax data build)")
    return int(tfds.builder_from_directory(path).info.features["image"].shape[0])


def open_splits(path: str, need=()) -> dict:
    """``{split: random-access source}`` of a dataset built at ``path``, with at least the
    splits ``need`` (a clear error names the missing ones)."""
    splits = _open_splits(path)
    missing = [s for s in need if s not in splits]
    if missing:
        raise DataError(f"{path}: the dataset has no {', '.join(missing)} split (it has "
                        f"{', '.join(splits) or 'none'}); give every split at least one image")
    return splits


def select(keys):
    """A Grain map keeping only ``keys`` of each example (batching needs fixed shapes)."""
    def fn(example):
        return {k: np.asarray(example[k]) for k in keys}
    return fn


def training_batches(source, batch_size: int, *, seed: int, keys=("image", "label"),
                     epochs: int | None = None, shard: bool = True) -> grain.MapDataset:
    """Shuffled (a new order every epoch), repeated, batched examples; ``ds[step]`` is step's
    batch. With ``shard``, each JAX process gets its own slice of the records and a
    ``batch_size // process_count`` share of each global batch."""
    ds = grain.MapDataset.source(source)
    per_process = batch_size
    if shard and jax.process_count() > 1:
        ds = ds.slice(slice(jax.process_index(), None, jax.process_count()))
        if batch_size % jax.process_count():
            raise ValueError(f"batch size {batch_size} does not split over "
                             f"{jax.process_count()} processes")
        per_process = batch_size // jax.process_count()
    ds = ds.seed(seed).shuffle().repeat(epochs).map(select(keys))
    return ds.batch(per_process, drop_remainder=True)


def evaluation_batches(source, batch_size: int, keys=("id", "image", "label", "mask"),
                       limit: int | None = None, shard: bool = False) -> grain.MapDataset:
    """Examples in their stored order (the first ``limit``), batched; the last batch may be
    short."""
    ds = grain.MapDataset.source(source)
    if limit is not None:
        ds = ds.slice(slice(0, limit))
    if shard and jax.process_count() > 1:
        ds = ds.slice(slice(jax.process_index(), None, jax.process_count()))
    return ds.map(select(keys)).batch(batch_size, drop_remainder=False)


def labels(source) -> np.ndarray:
    """Every example's label, in order (for class weights, AUCs and positive selection)."""
    return np.asarray([int(source[i]["label"]) for i in range(len(source))])
