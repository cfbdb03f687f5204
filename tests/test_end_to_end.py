"""pix2pix as a user runs it: train.py, --continue_train after an interruption, eval.py, export.py, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import eval as eval_script
import export as export_script
import train as train_script
from src.cli import main_wrapper
from tests.conftest import REPO, TINY, run_argv, write_ab_dataset


def _argv(data, runs, **over):
    return run_argv(TINY, data, runs, **over)


def _losses(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return [(r["global_step"], r["D_real"], r["D_fake"], r["G_GAN"], r["G_L1"]) for r in rows]


def test_train_eval_export(tmp_path, capsys):
    data = write_ab_dataset(tmp_path / "data", n_train=4, n_test=2)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="r")) == 0
    run = os.path.join(runs, "r")
    for f in (
        "config.yaml",
        "G_latest.ckpt",
        "D_latest.ckpt",
        "G_epoch_001.ckpt",
        "G_epoch_002.ckpt",
        "resume.ckpt",
        "loss_log.csv",
        "loss_plot.png",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
    ):
        assert os.path.isfile(os.path.join(run, f)), f
    assert len(_losses(os.path.join(run, "loss_log.csv"))) == 8
    assert not [f for f in os.listdir(run) if f.startswith(".")]  # no temporary files left behind
    out = capsys.readouterr().out
    assert "epoch 1/2  step 4/4" in out and "ms/step" in out

    # eval with nothing but --ckpt: the run's config supplies dataroot, sizes and networks
    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_latest.ckpt"), "--test_mode", "eval"]) == 0
    ev = os.path.join(run, "eval_test")
    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    assert metrics["num_images"] == 2 and 0 < metrics["psnr"] < 100 and -1 <= metrics["ssim"] <= 1
    page = open(os.path.join(ev, "index.html")).read()
    for name in ("test_000", "test_001"):
        for kind in ("input", "output", "target"):
            assert f"images/{name}_{kind}.png" in page
            assert os.path.isfile(os.path.join(ev, "images", f"{name}_{kind}.png"))

    # arbitrary image, odd size, RGBA: output keeps the original size
    odd = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 45, 4), dtype=np.uint8), "RGBA").save(odd)
    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_latest.ckpt"), "--input", str(odd)]) == 0
    result = Image.open(os.path.join(run, "eval_input", "images", "odd_output.png"))
    assert result.size == (45, 37)

    for fmt, ext in (("MINDIR", ".mindir"), ("ONNX", ".onnx")):
        target = str(tmp_path / "export" / "gen")
        code = main_wrapper(
            export_script.run,
            ["--ckpt", os.path.join(run, "G_latest.ckpt"), "--file_format", fmt, "--file_name", target],
        )
        assert code == 0
        assert os.path.getsize(target + ext) > 100_000
    assert "max |diff| vs checkpoint" in capsys.readouterr().out


def test_stop_and_continue_equals_uninterrupted(tmp_path):
    data = write_ab_dataset(tmp_path / "data", n_train=4, n_test=1)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="full", num_samples=0)) == 0
    assert main_wrapper(train_script.run, _argv(data, runs, name="cut", num_samples=0, max_steps=3)) == 0
    state_csv = os.path.join(runs, "cut", "loss_log.csv")
    assert len(_losses(state_csv)) == 3
    # resume mid-epoch with one flag naming the run directory; the saved config is reused
    assert main_wrapper(train_script.run, ["--resume", os.path.join(runs, "cut"), "--max_steps", "0"]) == 0
    assert _losses(state_csv) == _losses(os.path.join(runs, "full", "loss_log.csv"))


@pytest.mark.slow
def test_hard_kill_then_resume_matches_uninterrupted(tmp_path):
    """SIGKILL in the middle of training, resume with --continue_train: the loss log ends as an uninterrupted run's."""
    data = write_ab_dataset(tmp_path / "data", n_train=12, n_test=1, size=64)
    runs = str(tmp_path / "runs")
    common = dict(
        crop_size=64,
        load_size=70,
        g_layers=6,
        ngf=16,
        ndf=16,
        num_samples=0,
        n_epochs=2,
        n_epochs_decay=1,
        save_latest_freq=3,
        save_epoch_freq=0,
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, os.path.join(REPO, "train.py")]
    subprocess.run(cmd + _argv(data, runs, name="full", **common), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        cmd + _argv(data, runs, name="cut", **common), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = os.path.join(runs, "cut", "loss_log.csv")
    deadline = time.time() + 240
    while time.time() < deadline:
        if os.path.isfile(log) and len(_losses(log)) >= 16:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(_losses(log))
    assert 16 <= killed_at < 36, "the run should be killed mid-way"
    res = subprocess.run(
        cmd + ["--outputs_dir", runs, "--name", "cut", "--continue_train", "True"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "resumed" in res.stdout
    assert _losses(log) == _losses(os.path.join(runs, "full", "loss_log.csv"))


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(str(tmp_path / "missing"), runs)) == 2
    assert "dataset folder not found" in _error_line(capsys)

    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    assert main_wrapper(train_script.run, _argv(str(empty), runs)) == 2
    assert str(empty / "train") in _error_line(capsys)

    data = write_ab_dataset(tmp_path / "data", n_train=2, n_test=1)
    with open(os.path.join(data, "train", "train_001.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really a png")
    assert main_wrapper(train_script.run, _argv(data, runs, name="bad")) == 2
    assert "train_001.png" in _error_line(capsys)

    small = write_ab_dataset(tmp_path / "small", n_train=2, n_test=1, size=16)
    assert main_wrapper(train_script.run, _argv(small, runs, name="small", preprocess="crop")) == 2
    assert "crop" in _error_line(capsys)

    assert main_wrapper(train_script.run, ["--model", "stylegan", "--dataroot", data]) == 2
    assert "valid models are: cyclegan, pix2pix" in _error_line(capsys)
    assert main_wrapper(train_script.run, ["--dataroot", data, "--lambda_l2", "3"]) == 2
    assert "unknown config key 'lambda_l2'" in _error_line(capsys)
    assert main_wrapper(train_script.run, _argv(data, runs, name="none", continue_train=True)) == 2
    assert "nothing to resume" in _error_line(capsys)
    # none of the failures above left a run directory behind
    assert not os.path.exists(runs) or os.listdir(runs) == []


def test_wrong_checkpoints_are_refused(tmp_path, capsys):
    data = write_ab_dataset(tmp_path / "data", n_train=2, n_test=1)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="r", n_epochs_decay=0, num_samples=0)) == 0
    capsys.readouterr()
    run = os.path.join(runs, "r")
    # starting again in the same run directory without --continue_train would overwrite it
    assert main_wrapper(train_script.run, _argv(data, runs, name="r")) == 2
    assert "already holds a run" in _error_line(capsys)
    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "D_latest.ckpt")]) == 2
    assert "holds network 'D'" in _error_line(capsys)
    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_latest.ckpt"), "--ngf", "16"]) == 2
    assert "does not fit" in _error_line(capsys)
    assert main_wrapper(export_script.run, ["--ckpt", os.path.join(run, "nope.ckpt")]) == 2
    assert "checkpoint not found" in _error_line(capsys)
    assert (
        main_wrapper(
            eval_script.run, ["--ckpt", os.path.join(run, "G_latest.ckpt"), "--input", str(tmp_path / "nothing")]
        )
        == 2
    )
    assert "not found" in _error_line(capsys)
