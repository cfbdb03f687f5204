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
    """Build the model of ``cfg.model`` with its networks initialised (and optimisers when ``training``), their
    convolutions set to ``cfg.conv_algorithm``."""
    model = get_model_class(cfg.model)(cfg, env, training=training)
    apply_conv_algorithm(model, cfg)
    return model


def apply_conv_algorithm(model, cfg):
    """Set ``cfg.conv_algorithm`` on every network the model holds (generators, discriminators, teachers, encoders,
    loss networks), before anything is compiled."""
    from mindspore import nn

    from src.common.fast_conv import set_conv_algorithm

    for value in vars(model).values():
        nets = value.values() if isinstance(value, dict) else [value]
        for net in nets:
            if isinstance(net, nn.Cell):
                set_conv_algorithm(net, cfg.conv_algorithm, cfg.device_target)
    return model
