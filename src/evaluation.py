"""Inference for eval.py and export.py: a generator from its checkpoint, and the eval protocol's loops.

Every model implements the same verbs (:class:`src.model_base.GANModel`): ``prepare_eval``, ``eval_sets`` (a list of
:class:`src.common.eval_sets.EvalSet`), ``translate_file`` and ``set_test_mode``; nothing here depends on which model
it is.
"""

import os

from src.errors import UserError


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
    model.prepare_eval(cfg.ckpt, network)  # e.g. CycleGAN: its partner generator; pix2pixHD: E and the clusters
    model.set_test_mode(cfg.test_mode)
    return model, network


def translate_inputs(cfg, model, out_dir, log=print):
    """Translate every image of ``cfg.input`` at its own size (``model.translate_file``); returns the HTML rows."""
    from src.dataset.image_io import list_images, save_image, tensor_to_uint8

    paths = [cfg.input] if os.path.isfile(cfg.input) else list_images(cfg.input, "input images")
    if cfg.max_eval_images > 0:
        paths = paths[: cfg.max_eval_images]
    rows = []
    for i, path in enumerate(paths):
        shown, out = model.translate_file(path)
        h, w = out.shape[1:]
        stem = os.path.splitext(os.path.basename(path))[0]
        save_image(tensor_to_uint8(shown), os.path.join(out_dir, "images", f"{stem}_input.png"))
        save_image(tensor_to_uint8(out), os.path.join(out_dir, "images", f"{stem}_output.png"))
        rows.append(
            dict(name=stem, images={"input": f"images/{stem}_input.png", "output": f"images/{stem}_output.png"})
        )
        log(f"[{i + 1}/{len(paths)}] {path} -> {stem}_output.png ({w}x{h})")
    return rows


def evaluate_split(cfg, model, out_dir, log=print):
    """Translate the eval split; returns (rows, per-image metrics, mean metrics).

    PSNR/SSIM are computed only for images with a paired target; with several sets (CycleGAN's two directions)
    the metrics are grouped by set tag (``AtoB.psnr``, ...).
    """
    from src.dataset.image_io import save_image, tensor_to_uint8
    from src.metrics.image_quality import mean_metrics, psnr, ssim

    sets = model.eval_sets(cfg, cfg.eval_phase)
    rows, per_image, metrics = [], {}, {}
    for s in sets:
        tag = s.tag
        n = len(s) if cfg.max_eval_images <= 0 else min(len(s), cfg.max_eval_images)
        scored = []
        for i in range(n):
            real_a, fake_b, real_b = s.translate(i)
            name = s.names[i].replace(os.sep, "_").replace("/", "_")
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
