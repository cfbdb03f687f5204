"""Data-parallel training through msrun with 2 CPU workers on loopback (issue: distributed training)."""

import csv
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, write_ab_dataset

COMMON = dict(
    crop_size=32,
    load_size=36,
    g_layers=5,
    ngf=8,
    ndf=8,
    d_layers=2,
    norm="instance",
    use_dropout=False,
    seed=3,
    n_epochs=1,
    n_epochs_decay=0,
    print_freq=1,
    num_samples=0,
    save_epoch_freq=0,
    log_samples=True,
    device_target="CPU",
)


def _flags(values):
    return [x for k, v in values.items() for x in (f"--{k}", str(v))]


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
