"""Deterministic, resumable, shardable epoch loader on top of ``mindspore.dataset.GeneratorDataset``.

Every batch is a pure function of ``(seed, epoch, rank)``:

* the sample order of an epoch is ``np.random.default_rng([seed, epoch]).permutation(n)``;
* each sample's augmentation uses ``np.random.default_rng([seed, epoch, index])``, so it does not depend on
  worker scheduling;
* data-parallel ranks take disjoint interleaved slices of the same permutation, all with the same number of batches.

So a run killed in the middle of an epoch resumes with ``skip_batches`` = the number of batches already done and
gets exactly the batches it would have had (skipped samples are not loaded).

A *source* is any object with ``columns`` (tuple of names), ``__len__`` and ``get(index, rng) -> dict`` of arrays
keyed by ``columns`` (e.g. :class:`src.dataset.aligned.AlignedDataset`, see :mod:`src.dataset.source`); each batch is
a dict of the same keys.

Facts checked on MindSpore 2.8 (see ``tests/test_loader.py``): ``GeneratorDataset(shuffle=False)`` with
``num_parallel_workers > 1`` (threads or processes) returns rows in source order; an exception raised in the source
surfaces as a ``RuntimeError`` wrapping a long report, so this module re-raises the original exception instead.
"""

import multiprocessing
import os

import numpy as np

from src.errors import UserError


def _check_int(value, what, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{what} must be an integer >= {minimum}, got {value!r}")


def epoch_permutation(n, seed, epoch, shuffle=True):
    """Sample order of ``epoch``: a permutation of ``range(n)`` fixed by ``(seed, epoch)``, or ``arange`` if not
    ``shuffle``."""
    _check_int(seed, "seed", 0)
    _check_int(epoch, "epoch", 0)
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def shard_indices(perm, num_shards, shard_id, batch_size, drop_remainder=True):
    """The part of ``perm`` that rank ``shard_id`` of ``num_shards`` loads.

    With ``drop_remainder`` the tail is dropped so every rank gets the same number of full batches; ranks are
    disjoint (interleaved slices ``[shard_id::num_shards]``).
    """
    _check_int(num_shards, "num_shards", 1)
    _check_int(batch_size, "batch_size", 1)
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id {shard_id} out of range for {num_shards} shards")
    perm = np.asarray(perm)
    if drop_remainder:
        group = num_shards * batch_size
        perm = perm[: (len(perm) // group) * group]
    return perm[shard_id::num_shards]


def steps_per_epoch(n, batch_size, num_shards=1, drop_remainder=True):
    """Number of batches per epoch on each rank (rank 0 without ``drop_remainder``); :class:`UserError` if 0."""
    _check_int(batch_size, "batch_size", 1)
    _check_int(num_shards, "num_shards", 1)
    if drop_remainder:
        steps = n // (batch_size * num_shards)
    else:
        per_rank = -(-n // num_shards)  # ceil; rank 0 gets the most samples
        steps = -(-per_rank // batch_size)
    if steps == 0:
        devices = f" x {num_shards} devices" if num_shards > 1 else ""
        raise UserError(
            f"dataset has {n} images, fewer than batch_size {batch_size}{devices} = {batch_size * num_shards}; "
            "lower batch_size or add images"
        )
    return steps


class _EpochSource:
    """Random-access adapter: row ``i`` is sample ``indices[i]`` with its own deterministic RNG.

    Exceptions are recorded in ``errors`` (works for thread workers) before MindSpore wraps them.
    """

    def __init__(self, source, indices, seed, epoch):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.errors = []

    def __len__(self):
        return len(self.indices)

    def load(self, i):
        index = int(self.indices[i])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = self.source.get(index, rng)
        return tuple(sample[c] for c in self.source.columns)

    def __getitem__(self, i):
        try:
            return self.load(i)
        except Exception as err:
            self.errors.append(err)
            raise


class EpochLoader:
    """Iterable over the batches of one epoch on one rank; each batch is a dict ``{column: stacked NumPy array}``
    keyed by ``source.columns``. Re-iterable (each ``iter()`` rebuilds the pipeline); ``len()`` = batches yielded."""

    def __init__(self, source, indices, batch_size, seed, epoch, num_workers, drop_remainder, python_multiprocessing):
        self.source = source
        self.indices = indices
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.num_workers = num_workers
        self.drop_remainder = drop_remainder
        self.python_multiprocessing = python_multiprocessing

    def __len__(self):
        if self.drop_remainder:
            return len(self.indices) // self.batch_size
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self):
        if len(self) == 0:
            return
        import mindspore.dataset as ds

        epoch_source = _EpochSource(self.source, self.indices, self.seed, self.epoch)
        dataset = ds.GeneratorDataset(
            epoch_source,
            column_names=list(self.source.columns),
            shuffle=False,
            num_parallel_workers=self.num_workers,
            python_multiprocessing=self.python_multiprocessing,
        )
        dataset = dataset.batch(self.batch_size, drop_remainder=self.drop_remainder)
        iterator = dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
        done = 0
        try:
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except Exception as err:
                    original = self._find_error(epoch_source, done)
                    if original is None:
                        raise
                    raise original from err
                done += 1
                yield dict(zip(self.source.columns, batch))
        finally:
            iterator.stop()

    def _find_error(self, epoch_source, batches_done):
        """The exception the source raised, unwrapped from MindSpore's report.

        Thread workers record it directly; for process workers, reload the not-yet-delivered samples in this
        process (deterministic, so the same sample fails again).
        """
        if epoch_source.errors:
            return epoch_source.errors[0]
        for i in range(batches_done * self.batch_size, len(epoch_source)):
            try:
                epoch_source.load(i)
            except Exception as err:
                return err
        return None


def make_epoch_loader(
    source,
    batch_size,
    epoch,
    seed,
    shuffle=True,
    num_shards=1,
    shard_id=0,
    skip_batches=0,
    num_workers=1,
    drop_remainder=True,
    python_multiprocessing=False,
):
    """Batches of ``epoch`` for rank ``shard_id`` of ``num_shards``, skipping the first ``skip_batches``.

    ``num_workers`` is capped at the CPU count. Thread workers (default) are as fast as processes on small machines
    (PIL releases the GIL while decoding and resizing); set ``python_multiprocessing=True`` to use processes.
    An exception raised by ``source.get`` (e.g. :class:`UserError` for a corrupt image) is re-raised unchanged.
    """
    _check_int(skip_batches, "skip_batches", 0)
    _check_int(num_workers, "num_workers", 1)
    steps = steps_per_epoch(len(source), batch_size, num_shards, drop_remainder)
    if skip_batches > steps:
        raise UserError(f"cannot skip {skip_batches} batches: the epoch has only {steps}; check the resume state")
    perm = epoch_permutation(len(source), seed, epoch, shuffle)
    indices = shard_indices(perm, num_shards, shard_id, batch_size, drop_remainder)
    indices = indices[skip_batches * batch_size :]
    num_workers = max(1, min(int(num_workers), multiprocessing.cpu_count(), os.cpu_count() or 1))
    return EpochLoader(source, indices, batch_size, seed, epoch, num_workers, drop_remainder, python_multiprocessing)
