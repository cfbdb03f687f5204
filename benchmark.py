"""Speed and memory of one model on this machine, as ONE comparable line.

    python benchmark.py --model pix2pix [--image_size 256 --batch_size 1 --steps 20 --warmup 3] [--any_key value]

Measures, on random inputs (no dataset needed): ms per training step (median of ``--steps`` after ``--warmup``),
the first step's time less that median (graph compilation), inference images/s and ms/image (median), and the
process's peak resident memory. Time on an idle machine, one run at a time; compare figures of the same sitting.
"""

import argparse
import json
import resource
import sys
import time

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import main_wrapper


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
    args, rest = parser.parse_known_args(argv)
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
        peak_rss_mb=round(peak_rss_mb()),
        device=cfg.device_target,
        mindspore=ms.__version__,
    )
    result.update(model.complexity(args.image_size))  # CycleGAN: parameters and MACs of G (and of the teacher)
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
