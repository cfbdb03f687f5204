"""Data-parallel training through msrun with 2 CPU workers on loopback (issue: distributed training)."""

import csv
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, TINY, cli_args, write_ab_dataset, write_unpaired

# the networks and loop of conftest's tiny pix2pix (model and batch size are each test's), instance norm, one epoch
COMMON = dict(
    {k: v for k, v in TINY.items() if k not in ("model", "batch_size", "save_latest_freq")},
    norm="instance",
    n_epochs_decay=0,
    num_samples=0,
    save_epoch_freq=0,
    log_samples=True,
    device_target="CPU",
)
_flags = cli_args


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples(text):
    """(epoch, step) -> sample indices, from the log_samples lines."""
    return {
        (int(m[1]), int(m[2])): [int(x) for x in m[3].split(",") if x.strip()]
        for m in re.finditer(r"epoch (\d+) step (\d+) samples \[([\d, ]*)\]", text)
    }


def _csv_losses(path):
    with open(path) as f:
        return [{k: float(r[k]) for k in ("D_real", "D_fake", "G_GAN", "G_L1")} for r in csv.DictReader(f)]


def _log_losses(text):
    return [
        {k: float(v) for k, v in re.findall(r"(D_real|D_fake|G_GAN|G_L1) (-?[\d.]+)", line)}
        for line in text.splitlines()
        if re.search(r"epoch \d+/\d+  step \d+/\d+ \(", line)
    ]


def _generate(ckpt_path, x):
    from src.common.checkpoint import load_network
    from src.pix2pix.model import Pix2PixModel
    from tests.conftest import tiny_cfg

    cfg = tiny_cfg(**{k: v for k, v in COMMON.items() if k not in ("log_samples", "device_target")})
    model = Pix2PixModel(cfg, training=False)
    load_network(model.G, str(ckpt_path), "pix2pix", "G")
    model.set_test_mode("eval")
    return model.generate(x)


@pytest.mark.slow
def test_two_cpu_workers_match_one_process_with_the_same_global_batch(tmp_path):
    data = write_ab_dataset(tmp_path / "data", n_train=8, n_test=1)
    env = dict(os.environ, PYTHONPATH=REPO, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    single = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "train.py"),
            "--dataroot",
            data,
            "--outputs_dir",
            str(tmp_path / "runs"),
            "--name",
            "single",
            "--batch_size",
            "2",
        ]
        + _flags(COMMON),
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert single.returncode == 0, single.stderr[-2000:]

    logs = tmp_path / "logs"
    dist = subprocess.run(
        [
            "bash",
            os.path.join(REPO, "scripts", "run_distribute_train.sh"),
            "2",
            "pix2pix",
            data,
            "-",
            "CPU",
            "--outputs_dir",
            str(tmp_path / "runs"),
            "--name",
            "dist",
            "--batch_size",
            "1",
        ]
        + _flags(COMMON),
        env=dict(env, MASTER_PORT=str(_free_port()), LOG_DIR=str(logs)),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert dist.returncode == 0, (dist.stdout + dist.stderr)[-2000:]
    worker = [open(logs / f"worker_{r}.log").read() for r in (0, 1)]

    # (a) both ranks hold identical parameters
    sums = [re.search(r"rank \d/2 parameter checksum: (.*)", w).group(1) for w in worker]
    assert sums[0] == sums[1]

    # (c) each rank saw its own shard: disjoint, and together the single run's global batches
    ref = _samples(single.stdout)
    per_rank = [_samples(w) for w in worker]
    assert len(ref) == 4 and set(per_rank[0]) == set(per_rank[1]) == set(ref)
    for key, both in ref.items():
        a, b = per_rank[0][key], per_rank[1][key]
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(both)

    # (b) the result equals one process with the same global batch (gradient mean == batch mean). Compared as
    # functions: conv biases in front of instance norm get numerically-zero gradients, which Adam turns into +-lr
    # steps of arbitrary sign, so raw weights are not comparable, but they do not change the output.
    single_losses = _csv_losses(tmp_path / "runs" / "single" / "loss_log.csv")
    rank_losses = [_log_losses(w) for w in worker]
    assert len(single_losses) == len(rank_losses[0]) == len(rank_losses[1]) == 4
    for ref_step, r0, r1 in zip(single_losses, *rank_losses):
        for name in ref_step:
            assert (r0[name] + r1[name]) / 2 == pytest.approx(ref_step[name], rel=2e-3, abs=2e-4), name
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    outputs = [_generate(tmp_path / "runs" / run / "G_latest.ckpt", x) for run in ("single", "dist")]
    diff = float(np.max(np.abs(outputs[0] - outputs[1])))
    assert diff < 1e-4, diff
    # only rank 0 wrote the run directory; nothing half-written
    assert not [f for f in os.listdir(tmp_path / "runs" / "dist") if f.startswith(".")]


def _msrun(script_args, tmp_path, env_extra=None):
    """Run a launch script (msrun underneath) with 2 CPU workers; returns the two worker logs."""
    logs = tmp_path / "logs"
    env = dict(
        os.environ,
        PYTHONPATH=REPO,
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        MASTER_PORT=str(_free_port()),
        LOG_DIR=str(logs),
        **(env_extra or {}),
    )
    res = subprocess.run(["bash"] + script_args, env=env, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]
    return [open(logs / f"worker_{r}.log").read() for r in (0, 1)]


def _check_ranks(worker, n_images, seed, epochs, networks):
    """(a) identical parameters of every network on both ranks; (c) each rank's batches are exactly its shard of
    the epoch's shuffled order, so the ranks are disjoint and together cover the epoch."""
    from src.dataset.loader import epoch_permutation, shard_indices

    sums = [re.search(r"rank \d/2 parameter checksum: (.*)", w).group(1) for w in worker]
    assert sorted(re.findall(r"(\w+)=", sums[0])) == sorted(networks), sums[0]
    assert sums[0] == sums[1], sums
    per_rank = [_samples(w) for w in worker]
    for epoch in range(1, epochs + 1):
        perm = epoch_permutation(n_images, seed, epoch)
        seen = []
        for rank in (0, 1):
            steps = sorted(s for e, s in per_rank[rank] if e == epoch)
            got = [i for s in steps for i in per_rank[rank][(epoch, s)]]
            assert got == [int(i) for i in shard_indices(perm, 2, rank, 1)], (epoch, rank, got)
            seen.append(set(got))
        assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(n_images))
    # the ranks trained on different images (their first losses differ), so without the gradient reducer their
    # parameters would drift apart
    first = [re.search(r"step 1/\d+ \(.*?\)  (.*?)  lr", w).group(1) for w in worker]
    assert first[0] != first[1]


@pytest.mark.slow
def test_cyclegan_two_cpu_workers_share_all_four_networks(tmp_path):
    """CycleGAN with its image pools: each rank keeps a pool of its own fakes; G_A, G_B, D_A, D_B stay in sync."""
    data = write_unpaired(tmp_path / "data", n_a=4, n_b=4, n_test=1)
    flags = dict(
        crop_size=32, load_size=36, g_layers=2, ngf=4, ndf=4, d_layers=2, pool_size=2, use_dropout=False, seed=5,
        n_epochs=2, n_epochs_decay=0, print_freq=1, num_samples=0, save_epoch_freq=0, log_samples=True,
        outputs_dir=tmp_path / "runs", name="cg",
    )  # fmt: skip
    script = os.path.join(REPO, "scripts", "run_distribute_train.sh")
    worker = _msrun([script, "2", "cyclegan", data, "-", "CPU"] + _flags(flags), tmp_path)
    _check_ranks(worker, 4, 5, 2, ["G_A", "G_B", "D_A", "D_B"])
    run = tmp_path / "runs" / "cg"
    assert {"G_A_latest.ckpt", "G_B_latest.ckpt", "D_A_latest.ckpt", "D_B_latest.ckpt"} <= set(os.listdir(run))


@pytest.mark.slow
def test_pix2pixhd_feat_recipe_on_two_cpu_workers(tmp_path):
    """seed 002's distribute_train_512p_feat.sh (msrun underneath) with tiny overrides: G, E and D stay in sync.

    One training image has more than 64 instances, so at some steps the two ranks run differently compiled steps
    (the encoder's segment count is bucketed per batch); the gradient all-reduce still matches up.
    """
    from PIL import Image

    from src.dataset.cityscapes import prepare_pix2pixhd
    from src.dataset.demo import write_cityscapes_tree

    write_cityscapes_tree(tmp_path / "cs", 4, 1, height=32, width=64, seed=1)
    data = str(tmp_path / "data")
    prepare_pix2pixhd(str(tmp_path / "cs"), data)
    inst = os.path.join(data, "train_inst", sorted(os.listdir(os.path.join(data, "train_inst")))[-1])
    blocks = np.random.default_rng(0).integers(0, 100, (8, 16))
    Image.fromarray((26000 + np.kron(blocks, np.ones((4, 4), np.int64))).astype(np.uint16)).save(inst)
    flags = dict(
        outputs_dir=tmp_path / "runs", preprocess="none", ngf=8, ndf=4, d_layers=1, n_downsample_global=2,
        n_blocks_global=1, no_vgg_loss=True, nef=4, n_downsample_E=2, n_epochs=2, n_epochs_decay=0, print_freq=1,
        num_samples=0, save_epoch_freq=0, log_samples=True, seed=3,
    )  # fmt: skip
    script = os.path.join(REPO, "scripts", "distribute_train_512p_feat.sh")
    worker = _msrun([script, "2", "True", data] + _flags(flags), tmp_path, {"DEVICE_TARGET": "CPU"})
    _check_ranks(worker, 4, 3, 2, ["G", "E", "D"])
    run = tmp_path / "runs" / "pix2pixhd_512p_feat"  # the recipe's name: the wrapper used the 512p_feat recipe
    config = open(run / "config.yaml").read()
    assert re.search(r"^instance_feat: true", config, re.M | re.I), config
    assert {"G_latest.ckpt", "E_latest.ckpt", "D_latest.ckpt"} <= set(os.listdir(run))


def test_distribute_script_errors_are_one_line(tmp_path):
    script = os.path.join(REPO, "scripts", "run_distribute_train.sh")
    res = subprocess.run(["bash", script, "two", "pix2pix", str(tmp_path), "-"], capture_output=True, text=True)
    assert res.returncode == 2 and "DEVICE_NUM must be a positive integer" in res.stderr
    res = subprocess.run(["bash", script, "2", "pix2pix", str(tmp_path / "nope"), "-"], capture_output=True, text=True)
    assert res.returncode == 2 and "dataset folder not found" in res.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = dict(
            os.environ, MASTER_PORT=str(port), PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
        )
        res = subprocess.run(
            ["bash", script, "2", "pix2pix", str(tmp_path), "-", "CPU"], capture_output=True, text=True, env=env
        )
    assert res.returncode == 2 and f"master port {port} is busy" in res.stderr
