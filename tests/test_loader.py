"""Epoch loader: determinism, resume, sharding, worker ordering and error propagation."""

import time

import numpy as np
import pytest
from PIL import Image

from src.dataset.aligned import AlignedDataset
from src.dataset.loader import epoch_permutation, make_epoch_loader, shard_indices, steps_per_epoch
from src.errors import UserError


class FakeSource:
    """Sample ``i`` is ``[i, a draw from its rng]``; optional random delays shuffle worker completion order."""

    columns = ("x", "index")

    def __init__(self, n, jitter=0.0, bad_index=None):
        self.n = n
        self.jitter = jitter
        self.bad_index = bad_index
        self.loaded = []

    def __len__(self):
        return self.n

    def get(self, index, rng):
        self.loaded.append(index)
        if index == self.bad_index:
            raise UserError(f"cannot read image /data/train/{index}.png (broken); replace or delete this file")
        if self.jitter:
            time.sleep(float(np.random.default_rng().random()) * self.jitter)
        return {"x": np.array([index, rng.integers(1 << 30)], dtype=np.int64), "index": np.int32(index)}


def run(source, **kwargs):
    batches = [{k: np.array(v) for k, v in batch.items()} for batch in make_epoch_loader(source, **kwargs)]
    assert all(list(b) == list(source.columns) for b in batches)  # dicts keyed by the columns, in their order
    return batches


def flat_index(batches):
    return np.concatenate([b["index"] for b in batches]) if batches else np.zeros(0, np.int32)


def assert_same(b1, b2):
    assert len(b1) == len(b2)
    for x, y in zip(b1, b2):
        assert list(x) == list(y)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_epoch_permutation():
    p = epoch_permutation(10, seed=3, epoch=1, shuffle=True)
    np.testing.assert_array_equal(p, np.random.default_rng([3, 1]).permutation(10))
    np.testing.assert_array_equal(epoch_permutation(5, 3, 1, shuffle=False), np.arange(5))
    assert not np.array_equal(p, epoch_permutation(10, 3, 2, True))
    with pytest.raises(UserError):
        epoch_permutation(5, seed=-1, epoch=0)


def test_same_seed_and_epoch_give_identical_batches():
    src = FakeSource(23)
    b1 = run(src, batch_size=4, epoch=2, seed=7)
    b2 = run(src, batch_size=4, epoch=2, seed=7)
    assert len(b1) == 5 and b1[0]["x"].shape == (4, 2) and b1[0]["index"].dtype == np.int32
    assert_same(b1, b2)
    idx = flat_index(b1)
    np.testing.assert_array_equal(idx, np.random.default_rng([7, 2]).permutation(23)[:20])
    # per-sample augmentation RNG is default_rng([seed, epoch, index])
    draws = np.concatenate([b["x"][:, 1] for b in b1])
    expected = [np.random.default_rng([7, 2, int(i)]).integers(1 << 30) for i in idx]
    np.testing.assert_array_equal(draws, expected)


def test_different_epoch_or_seed_changes_order():
    src = FakeSource(32)
    e0 = flat_index(run(src, batch_size=4, epoch=0, seed=1))
    e1 = flat_index(run(src, batch_size=4, epoch=1, seed=1))
    s2 = flat_index(run(src, batch_size=4, epoch=0, seed=2))
    assert sorted(e0) == sorted(e1) == list(range(32))
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, s2)


def test_no_shuffle_is_sequential():
    idx = flat_index(run(FakeSource(10), batch_size=3, epoch=4, seed=0, shuffle=False))
    np.testing.assert_array_equal(idx, np.arange(9))


@pytest.mark.parametrize("skip", [0, 1, 3, 5])
def test_skip_batches_gives_the_tail_without_loading_skipped(skip):
    full = run(FakeSource(22), batch_size=4, epoch=3, seed=5)
    src = FakeSource(22)
    tail = run(src, batch_size=4, epoch=3, seed=5, skip_batches=skip)
    assert len(full) == 5
    assert_same(tail, full[skip:])
    assert sorted(src.loaded) == sorted(flat_index(full[skip:]).tolist())  # skipped samples never loaded
    loader = make_epoch_loader(src, batch_size=4, epoch=3, seed=5, skip_batches=skip)
    assert len(loader) == 5 - skip
    with pytest.raises(UserError, match="cannot skip 6 batches"):
        make_epoch_loader(src, batch_size=4, epoch=3, seed=5, skip_batches=6)


def test_shards_are_disjoint_and_cover_steps_times_batch_times_shards():
    n, batch, shards = 29, 3, 2
    steps = steps_per_epoch(n, batch, shards)
    assert steps == 4
    per_rank = [
        flat_index(run(FakeSource(n), batch_size=batch, epoch=1, seed=9, num_shards=shards, shard_id=r))
        for r in range(shards)
    ]
    assert [len(p) for p in per_rank] == [steps * batch] * shards
    assert not set(per_rank[0]) & set(per_rank[1])
    union = np.concatenate(per_rank)
    assert len(set(union)) == steps * batch * shards
    perm = epoch_permutation(n, 9, 1)
    assert set(union) == set(perm[: steps * batch * shards])
    # same sample on a rank gets the same augmentation as it would without sharding
    np.testing.assert_array_equal(shard_indices(perm, 2, 1, batch), perm[:24][1::2])


def test_shard_indices_without_drop_remainder():
    perm = np.arange(7)
    np.testing.assert_array_equal(shard_indices(perm, 2, 0, 2, drop_remainder=False), [0, 2, 4, 6])
    np.testing.assert_array_equal(shard_indices(perm, 2, 1, 2, drop_remainder=False), [1, 3, 5])
    with pytest.raises(ValueError):
        shard_indices(perm, 2, 2, 2)


def test_drop_remainder_false_keeps_partial_last_batch():
    batches = run(FakeSource(10), batch_size=4, epoch=0, seed=0, drop_remainder=False)
    assert [len(b["index"]) for b in batches] == [4, 4, 2]
    assert steps_per_epoch(10, 4, drop_remainder=False) == 3
    assert steps_per_epoch(10, 4, num_shards=3, drop_remainder=False) == 1


def test_steps_per_epoch_error():
    assert steps_per_epoch(10, 4) == 2
    assert steps_per_epoch(16, 4, num_shards=2) == 2
    with pytest.raises(UserError, match=r"dataset has 5 images, fewer than batch_size 3 x 2 devices = 6"):
        steps_per_epoch(5, 3, num_shards=2)
    with pytest.raises(UserError, match=r"dataset has 3 images, fewer than batch_size 4 = 4; lower batch_size"):
        make_epoch_loader(FakeSource(3), batch_size=4, epoch=0, seed=0)


@pytest.mark.parametrize("mp", [False, True], ids=["threads", "processes"])
def test_parallel_workers_keep_order(mp):
    """GeneratorDataset(shuffle=False) with 2 workers and random per-sample delays returns source order."""
    ref = run(FakeSource(24), batch_size=2, epoch=1, seed=4)
    par = run(FakeSource(24, jitter=0.01), batch_size=2, epoch=1, seed=4, num_workers=2, python_multiprocessing=mp)
    assert_same(par, ref)


@pytest.mark.parametrize(
    ("workers", "mp"), [(1, False), (2, False), (2, True)], ids=["1-worker", "2-threads", "2-processes"]
)
def test_source_error_comes_out_unchanged(workers, mp):
    src = FakeSource(16, bad_index=int(epoch_permutation(16, 0, 0)[9]))
    loader = make_epoch_loader(src, batch_size=2, epoch=0, seed=0, num_workers=workers, python_multiprocessing=mp)
    got = []
    with pytest.raises(UserError) as info:
        for batch in loader:
            got.append(batch)
    assert str(info.value) == f"cannot read image /data/train/{src.bad_index}.png (broken); replace or delete this file"
    assert len(got) <= 4  # batch 4 holds the bad sample
    assert "Traceback" not in str(info.value) and "C++" not in str(info.value)


def test_corrupt_image_in_aligned_dataset_via_loader(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    data = (folder / "2.png").read_bytes()
    (folder / "2.png").write_bytes(data[: len(data) // 2])  # truncated: passes header check, fails decoding
    ds = AlignedDataset(tmp_path, preprocess="none")
    with pytest.raises(UserError, match=r"cannot read image .*2\.png"):
        for _ in make_epoch_loader(ds, batch_size=2, epoch=0, seed=0):
            pass


def test_aligned_dataset_batches(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((16, 32, 3), i * 40, np.uint8)).save(folder / f"{i}.png")
    ds = AlignedDataset(tmp_path, load_size=12, crop_size=8)
    batches = list(make_epoch_loader(ds, batch_size=2, epoch=0, seed=0))
    assert len(batches) == 2
    assert list(batches[0]) == ["input", "target", "index"]
    a, b, idx = batches[0]["input"], batches[0]["target"], batches[0]["index"]
    assert a.shape == b.shape == (2, 3, 8, 8) and a.dtype == np.float32 and idx.shape == (2,)
    for k, i in enumerate(idx):  # flat images: value identifies the sample
        np.testing.assert_allclose(a[k], i * 40 / 127.5 - 1, atol=1e-6)


def test_loader_is_reiterable_and_can_be_abandoned():
    loader = make_epoch_loader(FakeSource(12, jitter=0.001), batch_size=2, epoch=0, seed=3, num_workers=2)
    for _ in loader:
        break  # abandoning mid-epoch must not hang or break the next pass
    first = list(loader)
    second = list(loader)
    assert len(first) == len(loader) == 6
    assert_same(first, second)
