"""Configuration: ``default_config.yaml`` + per-model defaults + ``--config_path`` overlay + command-line overrides.

``default_config.yaml`` follows the model zoo's three-document layout: the first YAML document holds the values, the
second the help text of each key, the third the allowed choices. Its ``model_defaults`` mapping holds the values that
differ between models (pix2pix uses batch norm and the vanilla GAN loss, CycleGAN instance norm and LSGAN, ...).

Merge order, later wins: defaults -> ``model_defaults[model]`` -> overlay file -> command line.
Unknown keys and values outside the choices are :class:`UserError` s that name the key and what is valid.
Nothing is parsed at import time: entry scripts call :func:`parse_config` in ``main()``.
"""

import argparse
import difflib
import os

import yaml

from src.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "default_config.yaml")

# Names used by the model-zoo READMEs (seeds) that mean the same as one of our keys.
ALIASES = {
    "g_in_planes": "input_nc",
    "g_out_planes": "output_nc",
    "g_ngf": "ngf",
    "d_ndf": "ndf",
    "train_pic_size": "crop_size",
    "slope": "alpha",
    "norm_mode": "norm",
    "need_dropout": "use_dropout",
    "print_iter": "print_freq",
    "platform": "device_target",
    "lambda_L1": "lambda_l1",
    # CycleGAN seed (003) names
    "gl_num": "g_layers",
    "dl_num": "d_layers",
    "in_planes": "input_nc",
    "image_size": "crop_size",
    "model_g": "netG",
    # pix2pixHD seed (002) names
    "n_layers_D": "d_layers",
    "niter": "n_epochs",
    "niter_decay": "n_epochs_decay",
    "resize_or_crop": "preprocess",
    "fine_size": "crop_size",
    "data_root": "dataroot",
    "save_ckpt_dir": "outputs_dir",
    "load_ckpt": "ckpt",
    "predict_dir": "results_dir",
}


class Config(dict):
    """A dict whose keys can also be read as attributes (``cfg.ngf``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def copy(self):
        return Config(self)


def load_yaml_documents(path):
    """Return (values, help, choices) of a model-zoo style YAML file (missing documents become empty dicts)."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.safe_load_all(f))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    docs = [d or {} for d in docs] + [{}, {}, {}]
    for d in docs[:3]:
        if not isinstance(d, dict):
            raise UserError(f"config file {path} must hold YAML mappings (key: value), got {type(d).__name__}")
    return docs[0], docs[1], docs[2]


def _unknown_key(key, known, where):
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " See default_config.yaml for the valid keys."
    return UserError(f"unknown config key '{key}' in {where}.{hint}")


def _canonical(key):
    return ALIASES.get(key, key)


def _coerce(key, value, default, where):
    """Convert ``value`` (a string from the command line or a YAML value) to the type of ``default``."""
    if default is None or value is None:
        if isinstance(value, str) and value.lower() in ("none", "null", "~"):
            return None
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise UserError(f"config key '{key}' in {where} must be True or False, got '{value}'")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool):
            raise UserError(f"config key '{key}' in {where} must be an integer, got '{value}'")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key '{key}' in {where} must be an integer, got '{value}'") from None
        if as_float != int(as_float):
            raise UserError(f"config key '{key}' in {where} must be an integer, got '{value}'")
        return int(as_float)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"config key '{key}' in {where} must be a number, got '{value}'") from None
    if isinstance(default, (list, tuple)):
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
            if default and isinstance(default[0], (int, float)):
                value = [type(default[0])(v) for v in value]
        return list(value)
    return str(value) if not isinstance(value, str) else value


def _apply(cfg, updates, defaults, where):
    for key, value in updates.items():
        key = _canonical(key)
        if key not in defaults:
            raise _unknown_key(key, list(defaults), where)
        cfg[key] = _coerce(key, value, defaults[key], where)


def validate(cfg, choices):
    """Check every key that has a list of choices."""
    for key, allowed in choices.items():
        if key in cfg and cfg[key] is not None and allowed and cfg[key] not in allowed:
            valid = ", ".join(str(a) for a in allowed)
            raise UserError(f"config key '{key}' has value '{cfg[key]}'; valid values are: {valid}")


def build_arg_parser(values, helps, description=None):
    """An argparse parser with one ``--key`` flag per config key (values stay strings; typed later)."""
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False)
    parser.add_argument("--config_path", default=None, help="YAML file whose values override default_config.yaml")
    for key in values:
        if key == "model_defaults":
            continue
        parser.add_argument(f"--{key}", default=None, help=str(helps.get(key, "")) or None)
    for alias, key in ALIASES.items():
        parser.add_argument(f"--{alias}", dest=key, default=None, help=argparse.SUPPRESS)
    return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{self.prog}: {message} (run with --help for the list of options)")


def parse_config(argv=None, default_path=DEFAULT_CONFIG, overrides=None, description=None):
    """Parse the command line into a validated :class:`Config`.

    ``overrides`` (a dict) is applied after the command line; tests use it instead of building argv lists.
    """
    values, helps, choices = load_yaml_documents(default_path)
    model_defaults = values.get("model_defaults", {}) or {}
    defaults = {k: v for k, v in values.items() if k != "model_defaults"}

    parser = build_arg_parser(values, helps, description)
    parser.__class__ = _Parser
    args, extra = parser.parse_known_args(argv)
    if extra:
        unknown = next((e for e in extra if e.startswith("--")), extra[0])
        key = unknown.lstrip("-").split("=")[0]
        if unknown.startswith("--"):
            raise _unknown_key(key, list(defaults), "the command line")
        raise UserError(f"unexpected argument '{unknown}' on the command line; options look like --key value")
    cli = {k: v for k, v in vars(args).items() if v is not None and k != "config_path"}

    overlay = {}
    overlay_path = args.config_path or (overrides or {}).get("config_path")
    if overlay_path:
        overlay, _, _ = load_yaml_documents(overlay_path)
        overlay.pop("model_defaults", None)
    extra_over = {k: v for k, v in (overrides or {}).items() if k != "config_path"}

    # The model decides which model_defaults apply, so find it first.
    model = extra_over.get("model", cli.get("model", overlay.get("model", defaults.get("model"))))
    if model not in model_defaults:
        valid = ", ".join(sorted(model_defaults))
        raise UserError(f"unknown model '{model}'; valid models are: {valid}")

    cfg = Config(defaults)
    _apply(cfg, model_defaults[model], defaults, f"model_defaults.{model} of {default_path}")
    _apply(cfg, overlay, defaults, overlay_path or "overlay")
    _apply(cfg, cli, defaults, "the command line")
    _apply(cfg, extra_over, defaults, "overrides")
    cfg.config_path = overlay_path
    validate(cfg, choices)
    explicit = {}
    for source in (overlay, cli, extra_over):
        explicit.update({_canonical(k): cfg[_canonical(k)] for k in source})
    object.__setattr__(cfg, "_explicit", explicit)  # what the user set, for re-applying on top of a run's config
    return cfg


def load_run_config(run_config_path, default_path=DEFAULT_CONFIG):
    """Load a run's resolved ``config.yaml`` (as written by :func:`save_config`), filling keys added since."""
    values, _, choices = load_yaml_documents(default_path)
    saved, _, _ = load_yaml_documents(run_config_path)
    defaults = {k: v for k, v in values.items() if k != "model_defaults"}
    model = saved.get("model", defaults.get("model"))
    cfg = Config(defaults)
    _apply(cfg, (values.get("model_defaults") or {}).get(model, {}), defaults, "model_defaults")
    saved.pop("config_path", None)
    _apply(cfg, saved, defaults, run_config_path)
    cfg.config_path = None
    validate(cfg, choices)
    return cfg


def apply_overrides(cfg, updates, default_path=DEFAULT_CONFIG, where="the command line"):
    """Apply ``updates`` (key -> value or string) to ``cfg`` with the same checks as :func:`parse_config`."""
    values, _, choices = load_yaml_documents(default_path)
    defaults = {k: v for k, v in values.items() if k != "model_defaults"}
    _apply(cfg, updates, defaults, where)
    validate(cfg, choices)
    return cfg


def config_to_yaml(cfg):
    """The resolved config as YAML text (keys sorted)."""
    plain = {k: v for k, v in cfg.items() if k != "config_path"}
    return yaml.safe_dump(plain, sort_keys=True, default_flow_style=False)
