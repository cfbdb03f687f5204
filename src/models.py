"""The model registry: model names -> model classes, imported lazily."""

import importlib

from src.errors import UserError

MODELS = {
    "pix2pix": "src.pix2pix.model:Pix2PixModel",
    "cyclegan": "src.cyclegan.model:CycleGANModel",
    "pix2pixhd": "src.pix2pixhd.model:Pix2PixHDModel",
}


def get_model_class(name):
    """The model class registered under ``name``; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; valid models are: {', '.join(sorted(MODELS))}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(cfg, env=None, training=True):
    """Build the model of ``cfg.model`` with its networks initialised (and optimisers when ``training``)."""
    return get_model_class(cfg.model)(cfg, env, training=training)
