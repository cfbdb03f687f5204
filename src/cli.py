"""What every entry script does around its ``run``: one-line errors, exit codes, and the config with the run's own."""

import os
import sys
import traceback

from src.errors import UserError


def main_wrapper(run, argv=None, interrupted="interrupted"):
    """Call ``run(argv)``; a :class:`UserError` becomes one ``error: ...`` line on stderr and exit status 2.

    Ctrl-C prints ``interrupted`` (e.g. how to resume) and exits with 130; any other exception keeps its traceback.
    """
    try:
        run(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - an unexpected failure: keep the traceback, it is a bug to report
        traceback.print_exc()
        return 1
    return 0


def config_for_checkpoint(argv, description):
    """Config for eval/export: the ``config.yaml`` beside ``--ckpt`` (if any) + command-line overrides.

    Without a config beside the checkpoint, the defaults (+ ``--config_path``) are used, as for training.
    """
    from src.config import apply_overrides, load_run_config, parse_config

    cfg = parse_config(argv, description=description)
    if not cfg.ckpt:
        raise UserError("pass --ckpt RUN/G_latest.ckpt (a generator checkpoint written by train.py)")
    if not os.path.isfile(cfg.ckpt):
        raise UserError(f"checkpoint not found: {cfg.ckpt}")
    run_config = os.path.join(os.path.dirname(os.path.abspath(cfg.ckpt)), "config.yaml")
    if not os.path.isfile(run_config):
        return _with_checkpoint_options(cfg, argv, description), None
    base = load_run_config(run_config)
    explicit = getattr(cfg, "_explicit", {})
    if "model" in explicit and explicit["model"] != base.model:
        raise UserError(
            f"--model {explicit['model']} was given, but {cfg.ckpt} comes from a '{base.model}' run "
            f"({run_config}); drop --model or pass a {explicit['model']} checkpoint"
        )
    apply_overrides(base, explicit)
    return base, run_config


def _with_checkpoint_options(cfg, argv, description):
    """Without a run's config.yaml: the options stored in the checkpoint itself (e.g. by ``--convert_from_torch``),
    under the command line's explicit values."""
    from src.common.checkpoint import read_meta
    from src.config import apply_overrides, parse_config

    stored = dict(read_meta(cfg.ckpt).get("config") or {})
    if not stored:
        return cfg
    explicit = getattr(cfg, "_explicit", {})
    model = stored.pop("model", cfg.model)
    if "model" in explicit and explicit["model"] != model:
        raise UserError(
            f"--model {explicit['model']} was given, but {cfg.ckpt} holds a '{model}' network; drop --model"
        )
    if model != cfg.model:  # that model's defaults first, then the stored options
        cfg = parse_config(argv, overrides={"model": model}, description=description)
    apply_overrides(cfg, {k: v for k, v in stored.items() if k not in explicit}, where=cfg.ckpt)
    return cfg
