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

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError


def run(argv=None):
    from src.common.html_report import write_html_index
    from src.common.metrics_files import write_metrics
    from src.device import init_env
    from src.evaluation import evaluate_split, load_generator, translate_inputs

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
