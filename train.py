"""Train a model: ``python train.py --model pix2pix --dataroot DATA [--config_path configs/X.yaml] [--key value ...]``.

Resume a run after any interruption with ``--continue_train`` (same --name/--outputs_dir) or ``--resume RUN_DIR``.
"""

import os
import sys

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import main_wrapper
from src.errors import UserError


def resolve_config(argv):
    """The config of a new run, or for a resumed run its saved ``config.yaml`` with the flags given now on top."""
    from src.config import config_of_run, parse_config, peek_config, run_model
    from src.trainer import run_dir_of

    first = peek_config(argv)  # the run to resume, if any, decides the model and so the valid keys
    run_config = os.path.join(run_dir_of(first), "config.yaml")
    if (first.continue_train or first.resume) and os.path.isfile(run_config):
        cfg = parse_config(argv, description=__doc__, default_model=run_model(run_config))
        base = config_of_run(run_config, cfg.explicit)
        base.continue_train = True
        base.resume = cfg.resume
        cfg = base
    else:
        cfg = parse_config(argv, description=__doc__)
        if cfg.continue_train or cfg.resume:
            raise UserError(f"nothing to resume: {run_config} not found (check --name/--outputs_dir or --resume)")
    if not cfg.dataroot:
        raise UserError(
            "pass --dataroot DATA (a dataset folder; `python -m src.dataset.demo --out demo_data` makes one)"
        )
    if not os.path.isdir(cfg.dataroot):
        raise UserError(f"dataset folder not found: {cfg.dataroot}")
    return cfg


def run(argv=None):
    from src.device import init_env
    from src.models import build_model
    from src.trainer import Trainer

    cfg = resolve_config(argv)
    env = init_env(cfg)
    model = build_model(cfg, env, training=True)
    trainer = Trainer(cfg, env, model)
    trainer.train()


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
