"""Evaluate a trained generator: ``python eval.py --ckpt RUN/G_latest.ckpt [--dataroot DATA] [--input IMAGE_OR_DIR]``.

With a dataset it translates the ``eval_phase`` split (default ``test``) with the run's own config, writes the
images, ``index.html`` (input / output / target side by side) and PSNR/SSIM of output vs target as ``metrics.json``
and ``metrics.txt``. With ``--input`` it translates any image or folder of images at their original size.
"""

import os
import sys

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError


def pad_to_multiple(arr, multiple):
    """Pad a CHW array on the bottom/right to multiples of ``multiple`` (reflection); returns (padded, (h, w))."""
    _, h, w = arr.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        arr = np.pad(arr, ((0, 0), (0, ph), (0, pw)), mode="symmetric")
    return arr, (h, w)


def load_generator(cfg, env):
    """The model with its generator restored from ``cfg.ckpt`` (the network named in the file's metadata)."""
    from src.common import checkpoint as ckpt
    from src.models import build_model

    model = build_model(cfg, env, training=False)
    meta = ckpt.read_meta(cfg.ckpt)
    network = meta.get("network", "G")
    if network not in model.networks:
        raise UserError(
            f"{cfg.ckpt} holds network '{network}'; eval needs a generator checkpoint "
            f"({', '.join(sorted(model.networks))}), e.g. {os.path.join(os.path.dirname(cfg.ckpt), 'G_latest.ckpt')}"
        )
    ckpt.load_network(model.networks[network], cfg.ckpt, cfg.model, network)
    model.set_test_mode(cfg.test_mode)
    return model, network


def translate_inputs(cfg, model, out_dir, log=print):
    """Translate every image of ``cfg.input`` at its own size; returns the HTML rows."""
    from src.dataset.image_io import list_images, load_image, save_image, tensor_to_uint8, to_tensor_array

    paths = [cfg.input] if os.path.isfile(cfg.input) else list_images(cfg.input, "input images")
    if cfg.max_eval_images > 0:
        paths = paths[: cfg.max_eval_images]
    rows = []
    for i, path in enumerate(paths):
        img = load_image(path, cfg.input_nc)
        arr, (h, w) = pad_to_multiple(to_tensor_array(img), model.size_multiple)
        out = model.generate(arr[None])[0][:, :h, :w]
        stem = os.path.splitext(os.path.basename(path))[0]
        save_image(tensor_to_uint8(arr[:, :h, :w]), os.path.join(out_dir, "images", f"{stem}_input.png"))
        save_image(tensor_to_uint8(out), os.path.join(out_dir, "images", f"{stem}_output.png"))
        rows.append(
            dict(name=stem, images={"input": f"images/{stem}_input.png", "output": f"images/{stem}_output.png"})
        )
        log(f"[{i + 1}/{len(paths)}] {path} -> {stem}_output.png ({w}x{h})")
    return rows


def evaluate_split(cfg, model, out_dir, log=print):
    """Translate the eval split; returns (rows, per-image metrics, mean metrics)."""
    from src.dataset.image_io import save_image, tensor_to_uint8
    from src.metrics.image_quality import mean_metrics, psnr, ssim

    source = model.make_source(cfg, cfg.eval_phase, training=False)
    n = len(source) if cfg.max_eval_images <= 0 else min(len(source), cfg.max_eval_images)
    rows, per_image = [], {}
    for i in range(n):
        real_a, real_b, _ = source.get(i, np.random.default_rng([int(cfg.seed), i]))
        fake_b = model.generate(real_a[None])[0]
        name = source.names[i].replace(os.sep, "_").replace("/", "_")
        images = {}
        for label, arr in (("input", real_a), ("output", fake_b), ("target", real_b)):
            rel = f"images/{name}_{label}.png"
            save_image(tensor_to_uint8(arr), os.path.join(out_dir, rel))
            images[label] = rel
        out_u8, tgt_u8 = tensor_to_uint8(fake_b), tensor_to_uint8(real_b)
        per_image[name] = {"psnr": psnr(out_u8, tgt_u8), "ssim": ssim(out_u8, tgt_u8)}
        rows.append(dict(name=name, images=images))
        if (i + 1) % 50 == 0 or i + 1 == n:
            log(f"[{i + 1}/{n}] translated")
    metrics = mean_metrics(list(per_image.values()))
    metrics["num_images"] = n
    return rows, per_image, metrics


def run(argv=None):
    from src.common.report import write_html_index, write_metrics
    from src.device import init_env

    cfg, run_config = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    env = init_env(cfg)
    model, network = load_generator(cfg, env)
    run_dir = os.path.dirname(os.path.abspath(cfg.ckpt))
    what = "input" if cfg.input else cfg.eval_phase
    out_dir = cfg.results_dir or os.path.join(run_dir, f"eval_{what}")
    print(
        f"evaluating {cfg.ckpt} ({cfg.model} {network}, config {run_config or 'defaults'}, "
        f"test_mode {cfg.test_mode}) -> {out_dir}"
    )
    if cfg.input:
        if not os.path.exists(cfg.input):
            raise UserError(f"--input not found: {cfg.input}")
        rows = translate_inputs(cfg, model, out_dir)
        write_html_index(out_dir, f"{cfg.model}: {cfg.input}", ["input", "output"], rows, None, None)
    else:
        if not cfg.dataroot:
            raise UserError(
                "pass --dataroot DATA (or --input IMAGE_OR_DIR), or evaluate a checkpoint whose run "
                "directory has its config.yaml"
            )
        rows, per_image, metrics = evaluate_split(cfg, model, out_dir)
        write_html_index(
            out_dir,
            f"{cfg.model}: {cfg.dataroot} ({cfg.eval_phase})",
            ["input", "output", "target"],
            rows,
            metrics,
            per_image,
        )
        table = write_metrics(out_dir, metrics)
        print(table)
    print(f"wrote {os.path.join(out_dir, 'index.html')}")


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
