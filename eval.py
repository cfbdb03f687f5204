"""Evaluate a trained generator: ``python eval.py --ckpt RUN/G_latest.ckpt [--dataroot DATA] [--input IMAGE_OR_DIR]``.

With a dataset it translates the ``eval_phase`` split (default ``test``) with the run's own config, writes the
images, ``index.html`` (input / output / target side by side) and PSNR/SSIM of output vs target as ``metrics.json``
and ``metrics.txt`` (with ``--fid True``, also FID/KID of the outputs vs the targets, docs/fid.md). CycleGAN
(``--ckpt RUN/G_A_latest.ckpt``) translates testA with G_A and testB with G_B (the partner checkpoint next to it);
unpaired images have no target column and no PSNR/SSIM (their FID compares with the other direction's inputs).
With ``--input`` it translates any image or folder of images at their original size.
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
            f"({', '.join(sorted(model.networks))}), e.g. "
            f"{os.path.join(os.path.dirname(cfg.ckpt), sorted(model.networks)[0] + '_latest.ckpt')}"
        )
    ckpt.load_network(model.networks[network], cfg.ckpt, cfg.model, network)
    if hasattr(model, "prepare_eval"):  # e.g. CycleGAN: use this generator, and load its partner from the run
        model.prepare_eval(cfg.ckpt, network)
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
        if hasattr(model, "translate_file"):  # inputs that are not photos (pix2pixHD: label id maps)
            shown, out = model.translate_file(path)
            h, w = out.shape[1:]
        else:
            img = load_image(path, cfg.input_nc)
            arr, (h, w) = pad_to_multiple(to_tensor_array(img), model.size_multiple)
            out = model.generate(arr[None])[0][:, :h, :w]
            shown = arr[:, :h, :w]
        stem = os.path.splitext(os.path.basename(path))[0]
        save_image(tensor_to_uint8(shown), os.path.join(out_dir, "images", f"{stem}_input.png"))
        save_image(tensor_to_uint8(out), os.path.join(out_dir, "images", f"{stem}_output.png"))
        rows.append(
            dict(name=stem, images={"input": f"images/{stem}_input.png", "output": f"images/{stem}_output.png"})
        )
        log(f"[{i + 1}/{len(paths)}] {path} -> {stem}_output.png ({w}x{h})")
    return rows


def _eval_sets(cfg, model):
    """What to translate: ``model.eval_sets`` when the model has several (CycleGAN: one per direction), else its
    paired test split. Each set has ``tag`` (prefix of names and metrics, "" for one set), ``source`` (``get(i, rng)
    -> (input, target or None, ...)``, ``names``) and ``generate``."""
    if hasattr(model, "eval_sets"):
        return [
            dict(tag=s.tag, source=s, generate=s.generate, translate=getattr(s, "translate", None))
            for s in model.eval_sets(cfg, cfg.eval_phase)
        ]
    return [dict(tag="", source=model.make_source(cfg, cfg.eval_phase, training=False), generate=model.generate)]


def evaluate_split(cfg, model, out_dir, log=print):
    """Translate the eval split; returns (rows, per-image metrics, mean metrics).

    PSNR/SSIM are computed only for images with a paired target; with several sets (CycleGAN's two directions)
    the metrics are grouped by set tag (``AtoB.psnr``, ...).
    """
    from src.dataset.image_io import save_image, tensor_to_uint8
    from src.metrics.image_quality import mean_metrics, psnr, ssim

    sets = _eval_sets(cfg, model)
    rows, per_image, metrics = [], {}, {}
    for s in sets:
        source, tag = s["source"], s["tag"]
        n = len(source) if cfg.max_eval_images <= 0 else min(len(source), cfg.max_eval_images)
        scored = []
        for i in range(n):
            item = source.get(i, np.random.default_rng([int(cfg.seed), i]))
            if s.get("translate"):  # inputs that need more than one array (pix2pixHD: label, instances, photo)
                real_a, fake_b, real_b = s["translate"](item)
            else:
                real_a, real_b = item[0], item[1] if len(item) > 2 else None
                fake_b = s["generate"](real_a[None])[0]
            name = source.names[i].replace(os.sep, "_").replace("/", "_")
            name = f"{tag}_{name}" if tag else name
            images = {}
            for label, arr in (("input", real_a), ("output", fake_b), ("target", real_b)):
                if arr is None:
                    continue
                rel = f"images/{name}_{label}.png"
                save_image(tensor_to_uint8(arr), os.path.join(out_dir, rel))
                images[label] = rel
            if real_b is not None and real_b.shape == fake_b.shape:
                out_u8, tgt_u8 = tensor_to_uint8(fake_b), tensor_to_uint8(real_b)
                per_image[name] = {"psnr": psnr(out_u8, tgt_u8), "ssim": ssim(out_u8, tgt_u8)}
                scored.append(per_image[name])
            rows.append(dict(name=name, images=images, set=tag))
            if (i + 1) % 50 == 0 or i + 1 == n:
                log(f"[{i + 1}/{n}] {tag + ' ' if tag else ''}translated")
        part = mean_metrics(scored) if scored else {}
        part["num_images"] = n
        if tag:
            part["num_with_target"] = len(scored)
        if tag and len(sets) > 1:
            metrics[tag] = part
        else:
            metrics.update(part)
    return rows, per_image, metrics


def run(argv=None):
    from src.common.report import write_html_index, write_metrics
    from src.device import init_env

    cfg, run_config = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    env = init_env(cfg)
    if cfg.fcn_score:
        from src.metrics.fcn_score import check_eval_options

        check_eval_options(cfg)
    if cfg.fid:
        from src.metrics.fid import check_eval_options as check_fid_options

        check_fid_options(cfg)
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
        if cfg.fid:  # FID / KID of the outputs vs the targets (src/metrics/fid.py)
            from src.metrics.fid import score_eval_rows as fid_of_rows

            fid_of_rows(cfg, rows, metrics, out_dir)
        has_target = any("target" in r["images"] for r in rows)
        write_html_index(
            out_dir,
            f"{cfg.model}: {cfg.dataroot} ({cfg.eval_phase})",
            ["input", "output", "target"] if has_target else ["input", "output"],
            rows,
            metrics,
            per_image,
        )
        table = write_metrics(out_dir, metrics)
        print(table)
    if cfg.fcn_score:  # Cityscapes FCN score of the generated images (src/metrics/fcn_score.py)
        from src.metrics.fcn_score import score_eval_rows

        score_eval_rows(cfg, rows, out_dir)
    print(f"wrote {os.path.join(out_dir, 'index.html')}")


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
