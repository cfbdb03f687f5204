"""Speed and memory of one model on this machine, as ONE comparable line.

    python benchmark.py --model pix2pix [--image_size 256 --batch_size 1 --steps 20 --warmup 3] [--any_key value]
    python benchmark.py --all [--vgg_pre_trained vgg19-dcbb9e9d.pth]    # the README's three headline configurations

Measures, on random inputs (no dataset needed): ms per training step (median of ``--steps`` after ``--warmup``),
the first step's time less that median (graph compilation), inference images/s and ms/image (median), and the
process's peak resident memory after the training steps (``train_peak_rss_mb``, comparable with a script that only
trains) and at the end (``peak_rss_mb``, inference's graph included). Time on an idle machine, one run at a time;
compare figures of the same sitting.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import main_wrapper


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


HEADLINE = (
    ("pix2pix", "--model pix2pix --image_size 256 --steps 10 --warmup 3"),
    ("cyclegan", "--model cyclegan --image_size 256 --steps 3 --warmup 2 --use_dropout False"),
    ("pix2pixhd", "--model pix2pixhd --image_size 256 --image_width 512 --steps 3 --warmup 1"),
)
"""The configurations of the README's performance table: batch 1, fp32; CycleGAN without dropout as the reference."""


def headline_commands(vgg_pre_trained="", extra=()):
    """One command line per :data:`HEADLINE` configuration. pix2pixHD measures its VGG loss when ``vgg_pre_trained``
    is given (as the README's figures), else it runs with ``--no_vgg_loss True`` (its line's ``keys`` say so)."""
    commands = []
    for name, flags in HEADLINE:
        cmd = [sys.executable, os.path.abspath(__file__)] + flags.split() + list(extra)
        if name == "pix2pixhd":
            cmd += ["--vgg_pre_trained", vgg_pre_trained] if vgg_pre_trained else ["--no_vgg_loss", "True"]
        commands.append(cmd)
    return commands


def run_all(vgg_pre_trained, extra):
    """Run the headline configurations one after another, each in its own process (its own peak memory)."""
    for cmd in headline_commands(vgg_pre_trained, extra):
        res = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in res.stdout.splitlines() if line.startswith("model=") or line.startswith("{")]
        if res.returncode != 0 or not lines:
            err = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"benchmark failed: {' '.join(cmd[1:])}: {err}")
        print(lines[-1], flush=True)


def run(argv=None):
    import mindspore as ms

    from src.config import parse_config
    from src.device import init_env
    from src.models import build_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--image_width", type=int, default=0, help="image width (default: image_size, square)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--infer_images", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a text line")
    parser.add_argument("--all", action="store_true", help="run the README's three headline configurations in turn")
    args, rest = parser.parse_known_args(argv)
    if args.all:
        vgg = ""
        if "--vgg_pre_trained" in rest:
            i = rest.index("--vgg_pre_trained")
            vgg, rest = rest[i + 1], rest[:i] + rest[i + 2 :]
        return run_all(vgg, rest + (["--json"] if args.json else []))
    cfg = parse_config(rest + ["--crop_size", str(args.image_size)], description=__doc__)
    env = init_env(cfg)
    model = build_model(cfg, env, training=True)
    model.set_train(True)
    width = args.image_width or args.image_size
    batch = model.example_batch(cfg.batch_size, args.image_size, width)

    times = []
    for _ in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        losses = model.train_step(batch)
        times.append(time.perf_counter() - t0)
    if not all(np.isfinite(v) for v in losses.values()):
        raise RuntimeError(f"non-finite losses during the benchmark: {losses}")
    step_ms = float(np.median(times[args.warmup :])) * 1000.0
    train_peak_mb = peak_rss_mb()  # before inference compiles its own graph (the PyTorch references time training)
    compile_s = max(0.0, times[0] - step_ms / 1000.0)

    model.set_test_mode("eval")
    x = batch[model.input_column][:1]
    infer = []
    for _ in range(2 + args.infer_images):
        t0 = time.perf_counter()
        model.generate(x)
        infer.append(time.perf_counter() - t0)
    infer_ms = float(np.median(infer[2:])) * 1000.0
    result = dict(
        model=cfg.model,
        image_size=args.image_size if width == args.image_size else f"{args.image_size}x{width}",
        batch_size=cfg.batch_size,
        ngf=cfg.ngf,
        train_ms_per_step=round(step_ms, 1),
        train_images_per_s=round(1000.0 * cfg.batch_size / step_ms, 2),
        compile_s=round(compile_s, 1),
        infer_ms_per_image=round(infer_ms, 1),
        infer_images_per_s=round(1000.0 / infer_ms, 2),
        train_peak_rss_mb=round(train_peak_mb),
        peak_rss_mb=round(peak_rss_mb()),
        device=cfg.device_target,
        mindspore=ms.__version__,
    )
    keys = ",".join(f"{k.lstrip('-')}={v}" for k, v in zip(rest[::2], rest[1::2]) if k != "--model")
    if keys:  # the config keys set on the command line, so that two lines say what differs between them
        result["keys"] = keys
    result.update(model.complexity(args.image_size))  # CycleGAN: parameters and MACs of G (and of the teacher)
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
