"""benchmark.py's command lines (the timings themselves are measured, never asserted)."""

import subprocess
import sys

import benchmark


def test_all_runs_the_three_headline_configurations():
    cmds = benchmark.headline_commands()
    assert [c[c.index("--model") + 1] for c in cmds] == ["pix2pix", "cyclegan", "pix2pixhd"]
    assert all(c[:2] == [sys.executable, benchmark.__file__] for c in cmds)
    cyclegan, hd = cmds[1], cmds[2]
    assert cyclegan[cyclegan.index("--use_dropout") + 1] == "False"  # the reference's CycleGAN has no dropout
    assert hd[hd.index("--image_width") + 1] == "512" and hd[-2:] == ["--no_vgg_loss", "True"]
    with_vgg = benchmark.headline_commands("vgg19.pth", ["--device_target", "CPU"])[2]
    assert with_vgg[-2:] == ["--vgg_pre_trained", "vgg19.pth"] and "--no_vgg_loss" not in with_vgg
    assert with_vgg[-4:-2] == ["--device_target", "CPU"]


def test_one_benchmark_line_names_the_keys_it_was_given(tmp_path):
    """A tiny real run: one line with the timings and the keys that differ from the defaults."""
    res = subprocess.run(
        [sys.executable, benchmark.__file__, "--model", "pix2pix", "--image_size", "32", "--steps", "1", "--warmup",
         "1", "--infer_images", "1", "--g_layers", "5", "--ngf", "4", "--ndf", "4"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    line = [x for x in res.stdout.splitlines() if x.startswith("model=")][-1]
    fields = dict(kv.split("=", 1) for kv in line.split())
    assert fields["model"] == "pix2pix" and fields["image_size"] == "32"
    assert float(fields["train_ms_per_step"]) > 0 and int(fields["peak_rss_mb"]) > 0
    assert 0 < int(fields["train_peak_rss_mb"]) <= int(fields["peak_rss_mb"])  # training's peak, then inference's
    assert fields["keys"] == "g_layers=5,ngf=4,ndf=4"
