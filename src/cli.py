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
    from src.config import config_of_run, parse_config, peek_config, run_model

    first = peek_config(argv)  # the checkpoint's run decides the model and so the valid keys
    if not first.ckpt or not os.path.isfile(first.ckpt):
        parse_config(argv, description=description)  # --help, or a bad option, before the missing checkpoint
        if not first.ckpt:
            raise UserError("pass --ckpt RUN/G_latest.ckpt (a generator checkpoint written by train.py)")
        raise UserError(f"checkpoint not found: {first.ckpt}")
    run_config = os.path.join(os.path.dirname(os.path.abspath(first.ckpt)), "config.yaml")
    if not os.path.isfile(run_config):
        return _with_checkpoint_options(first.ckpt, argv, description), None
    cfg = parse_config(argv, description=description, default_model=run_model(run_config))
    return config_of_run(run_config, cfg.explicit, what=cfg.ckpt), run_config


def _with_checkpoint_options(ckpt, argv, description):
    """Without a run's config.yaml: the options stored in the checkpoint itself (e.g. by ``--convert_from_torch``),
    under the command line's explicit values."""
    from src.common.checkpoint import read_meta
    from src.config import apply_overrides, parse_config

    stored = dict(read_meta(ckpt).get("config") or {})
    model = stored.pop("model", None)
    cfg = parse_config(argv, description=description, default_model=model)  # that model's defaults, then stored
    if model is not None and cfg.model != model:
        raise UserError(f"--model {cfg.model} was given, but {ckpt} holds a '{model}' network; drop --model")
    apply_overrides(cfg, {k: v for k, v in stored.items() if k not in cfg.explicit}, where=ckpt)
    return cfg
