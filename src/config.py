"""Configuration: ``default_config.yaml`` + the model's ``configs/models/<model>.yaml`` + ``--config_path`` overlay +
command-line overrides.

Both files follow the model zoo's three-document layout: the first YAML document holds the values, the second the
help text of each key, the third the allowed choices. ``default_config.yaml`` holds the keys every model shares (data,
training loop, optimiser, output, device, export, metrics); ``configs/models/<model>.yaml`` holds that model's own keys
and its values of shared keys (pix2pix uses batch norm and the vanilla GAN loss, CycleGAN instance norm and LSGAN, ...),
and is merged only when the model is selected, so ``--model NAME --help`` lists exactly the keys that model reads.

Merge order, later wins: defaults -> the model's file -> overlay file -> command line -> ``overrides``.
``--model`` is found first (overrides, command line, overlay, then the default). Unknown keys, keys of another model
and values outside the choices are :class:`UserError` s that name the key and what is valid.
A run's saved ``config.yaml`` is read by :func:`load_run_config` (keys of other models, as written by older versions,
are ignored) and :func:`config_of_run` puts the flags given now on top of it.
Nothing is parsed at import time: entry scripts call :func:`parse_config` in ``main()``.
"""

import argparse
import difflib
import os

import yaml

from src.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "default_config.yaml")
MODELS_DIR = os.path.join(REPO_ROOT, "configs", "models")

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
    # the teacher's keys mirror the student's (before: the CycleGAN seed's spellings)
    "t_gl_num": "t_g_layers",
    "t_slope": "t_alpha",
    "t_norm_mode": "t_norm",
}

# Old boolean flags that set another key: ``no_lsgan True`` (pix2pixHD seed) is ``gan_mode vanilla``; False changes
# nothing. Applied after the other keys of the same source, so an old run config's ``no_lsgan: True`` still wins over
# its ``gan_mode``, as it did.
FLAG_ALIASES = {"no_lsgan": ("gan_mode", "vanilla")}


class Config(dict):
    """A dict whose keys can also be read as attributes (``cfg.ngf``).

    ``explicit`` (not a key, so never saved) holds the keys the user set (overlay, command line, overrides) with their
    values: what :func:`config_of_run` re-applies on top of a run's saved config.
    """

    __slots__ = ("_explicit",)

    def __init__(self, *args, explicit=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.explicit = explicit or {}

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        if key in ("explicit", "_explicit"):
            super().__setattr__(key, value)
        else:
            self[key] = value

    @property
    def explicit(self):
        try:
            return self._explicit
        except AttributeError:
            return {}

    @explicit.setter
    def explicit(self, values):
        super().__setattr__("_explicit", dict(values))

    def copy(self):
        return Config(self, explicit=self.explicit)


class Schema:
    """The keys of one model: ``values`` (defaults), ``helps``, ``choices``; ``own``: its keys that are not shared."""

    def __init__(self, model, values, helps, choices, own, source):
        self.model, self.values, self.helps, self.choices, self.own, self.source = (
            model, values, helps, choices, own, source)  # fmt: skip


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


def available_models(models_dir=MODELS_DIR):
    """Model names that have a ``configs/models/<model>.yaml``."""
    try:
        names = os.listdir(models_dir)
    except FileNotFoundError:
        return []
    return sorted(n[: -len(".yaml")] for n in names if n.endswith(".yaml"))


def model_config_path(model, models_dir=MODELS_DIR):
    return os.path.join(models_dir, f"{model}.yaml")


def load_schema(model, default_path=DEFAULT_CONFIG, models_dir=MODELS_DIR):
    """The shared keys of ``default_path`` merged with ``model``'s own file (an unknown model lists the valid ones)."""
    values, helps, choices = load_yaml_documents(default_path)
    models = available_models(models_dir)
    if model not in models:
        raise UserError(f"unknown model '{model}'; valid models are: {', '.join(models)}")
    path = model_config_path(model, models_dir)
    m_values, m_helps, m_choices = load_yaml_documents(path)
    own = [k for k in m_values if k not in values]
    values = {**values, **m_values, "model": model}
    helps = {**helps, **m_helps}
    choices = {**choices, **m_choices, "model": models}
    return Schema(model, values, helps, choices, own, path)


def _keys_of_other_models(model, default_path=DEFAULT_CONFIG, models_dir=MODELS_DIR):
    """key -> the other models that have it, for the keys ``model`` does not have."""
    mine = load_schema(model, default_path, models_dir).values
    owners = {}
    for other in available_models(models_dir):
        if other != model:
            for key in load_yaml_documents(model_config_path(other, models_dir))[0]:
                if key not in mine:
                    owners.setdefault(key, []).append(other)
    return owners


def _unknown_key(key, schema, where, default_path=DEFAULT_CONFIG):
    """The one-line error for ``key`` (as the user spelled it), which ``schema``'s model does not have."""
    canonical = _canonical(key)
    names = {k: k for k in schema.values} | {a: k for a, k in ALIASES.items() if k in schema.values}
    close = list(dict.fromkeys(names[c] for c in difflib.get_close_matches(key, list(names), n=3)))
    owners = _keys_of_other_models(schema.model, default_path).get(canonical)
    shown = f"'{key}'" if canonical == key else f"'{key}' ({canonical})"
    if owners:
        text = f"config key {shown} in {where} is a key of {', '.join(owners)}, not of model {schema.model}."
    else:
        text = f"unknown config key {shown} in {where} (model {schema.model})."
    hint = f" Did you mean {', '.join(close)}?" if close else f" See --model {schema.model} --help for the valid keys."
    return UserError(text + hint)


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


def _apply(cfg, updates, schema, where, ignore=(), default_path=DEFAULT_CONFIG):
    """Apply ``updates`` (aliases resolved, values typed); return the keys set. Keys in ``ignore`` are skipped."""
    done, flags = [], []
    for key, value in updates.items():
        if key in FLAG_ALIASES:
            flags.append((key, value))
            continue
        spelled, key = key, _canonical(key)
        if key not in schema.values:
            if key in ignore:
                continue
            raise _unknown_key(spelled, schema, where, default_path)
        cfg[key] = _coerce(key, value, schema.values[key], where)
        done.append(key)
    for flag, value in flags:
        target, meaning = FLAG_ALIASES[flag]
        if _coerce(flag, value, False, where):
            cfg[target] = meaning
            done.append(target)
    return done


def validate(cfg, choices):
    """Check every key that has a list of choices."""
    for key, allowed in choices.items():
        if key in cfg and cfg[key] is not None and allowed and cfg[key] not in allowed:
            valid = ", ".join(str(a) for a in allowed)
            raise UserError(f"config key '{key}' has value '{cfg[key]}'; valid values are: {valid}")


def _help_text(key, schema, value):
    text = str(schema.helps.get(key, "")).replace("%", "%%")
    allowed = schema.choices.get(key)
    if allowed:
        text += f" [choices: {', '.join(str(a) for a in allowed)}]"
    if value not in (None, ""):
        text += f" (default: {str(value).replace('%', '%%')})"
    return text


def build_arg_parser(schema, description=None, list_own=True):
    """An argparse parser with one ``--key`` flag per key of ``schema`` (values stay strings; typed later).

    Without ``list_own`` the model's own keys are accepted but not listed by ``--help`` (no --model was given)."""
    models = ", ".join(schema.choices["model"])
    if list_own:
        source = os.path.relpath(schema.source, REPO_ROOT)
        epilog = f"The keys above are the shared ones and model {schema.model}'s own ({source})."
    else:
        epilog = (f"The keys above are the ones every model shares; run with --model NAME --help to list a model's own "
                  f"keys too (NAME: {models}; the default model is {schema.model}).")  # fmt: skip
    usage = "%(prog)s [--model NAME] [--config_path FILE] [--key value ...]"
    parser = _Parser(description=description, epilog=epilog, usage=usage, allow_abbrev=False)
    parser.add_argument("--config_path", default=None, help="YAML file whose values override default_config.yaml")
    for key, value in schema.values.items():
        hidden = key in schema.own and not list_own
        parser.add_argument(
            f"--{key}", default=None, help=argparse.SUPPRESS if hidden else _help_text(key, schema, value)
        )
    for alias, key in ALIASES.items():
        if key in schema.values:
            parser.add_argument(f"--{alias}", dest=key, default=None, help=argparse.SUPPRESS)
    for flag, (target, _) in FLAG_ALIASES.items():
        if target in schema.values:
            parser.add_argument(f"--{flag}", dest=f"flag:{flag}", default=None, help=argparse.SUPPRESS)
    return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{self.prog}: {message} (run with --help for the list of options)")


def _first_pass(argv):
    """``--model`` and ``--config_path`` from the command line, before the model's keys are known."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None)
    parser.add_argument("--config_path", default=None)
    return parser.parse_known_args(argv)[0]


def parse_config(argv=None, default_path=DEFAULT_CONFIG, overrides=None, description=None, default_model=None,
                 peek=False):  # fmt: skip
    """Parse the command line into a validated :class:`Config`.

    ``overrides`` (a dict) is applied after the command line; tests use it instead of building argv lists.
    ``default_model`` replaces default_config.yaml's model when none is given (a resumed run's model).
    ``peek``: only the shared keys, no --help and no errors for other keys (see :func:`peek_config`).
    """
    overrides = dict(overrides or {})
    first = _first_pass(argv)
    overlay = {}
    overlay_path = first.config_path or overrides.get("config_path")
    if overlay_path:
        overlay, _, _ = load_yaml_documents(overlay_path)
        overlay.pop("model_defaults", None)
    extra_over = {k: v for k, v in overrides.items() if k != "config_path"}
    given = extra_over.get("model", first.model or overlay.get("model"))
    model = given or default_model or load_yaml_documents(default_path)[0].get("model")
    schema = load_schema(model, default_path)

    parser = build_arg_parser(schema, description, list_own=bool(given or default_model))
    if peek:
        parser = _peek_parser(parser)
    args, extra = parser.parse_known_args(argv)
    if extra and not peek:
        unknown = next((e for e in extra if e.startswith("--")), extra[0])
        key = unknown.lstrip("-").split("=")[0]
        if unknown.startswith("--"):
            raise _unknown_key(key, schema, "the command line", default_path)
        raise UserError(f"unexpected argument '{unknown}' on the command line; options look like --key value")
    cli = {k.replace("flag:", ""): v for k, v in vars(args).items() if v is not None and k != "config_path"}

    cfg = Config(schema.values)
    explicit = []
    ignore = _all_keys(default_path) if peek else ()
    for source, where in ((overlay, overlay_path or "overlay"), (cli, "the command line"), (extra_over, "overrides")):
        explicit += _apply(cfg, source, schema, where, ignore, default_path)
    cfg.config_path = overlay_path
    validate(cfg, schema.choices)
    cfg.explicit = {k: cfg[k] for k in explicit}  # what the user set, for re-applying on top of a run's config
    return cfg


def _peek_parser(parser):
    quiet = _Parser(add_help=False, allow_abbrev=False)
    for action in parser._actions:
        if action.option_strings and action.option_strings[0] not in ("-h", "--help"):
            quiet.add_argument(*action.option_strings, dest=action.dest, default=None)
    return quiet


def peek_config(argv=None, overrides=None, default_path=DEFAULT_CONFIG):
    """The config of ``argv`` where only the shared keys (and the default model's) count: to find a run (``--resume``,
    ``--ckpt``) before its model, and so its keys, is known. Prints no help; keys of any model are not errors."""
    return parse_config(argv, default_path, overrides, peek=True)


def _all_keys(default_path=DEFAULT_CONFIG, models_dir=MODELS_DIR):
    keys = set(load_yaml_documents(default_path)[0]) | set(ALIASES) | set(FLAG_ALIASES)
    for model in available_models(models_dir):
        keys |= set(load_yaml_documents(model_config_path(model, models_dir))[0])
    return keys


def run_model(run_config_path, default_path=DEFAULT_CONFIG):
    """The model of a run's saved ``config.yaml``."""
    saved, _, _ = load_yaml_documents(run_config_path)
    return saved.get("model") or load_yaml_documents(default_path)[0].get("model")


def load_run_config(run_config_path, default_path=DEFAULT_CONFIG):
    """Load a run's resolved ``config.yaml`` (as written by :func:`save_config`), filling keys added since.

    Keys the run's model does not have (older versions saved every model's keys) are ignored; other unknown keys are
    errors."""
    saved, _, _ = load_yaml_documents(run_config_path)
    schema = load_schema(run_model(run_config_path, default_path), default_path)
    cfg = Config(schema.values)
    saved.pop("config_path", None)
    saved.pop("model_defaults", None)
    _apply(cfg, saved, schema, run_config_path, _all_keys(default_path), default_path)
    cfg.config_path = None
    validate(cfg, schema.choices)
    return cfg


def config_of_run(run_config_path, explicit, what="the run", default_path=DEFAULT_CONFIG):
    """A run's saved config with ``explicit`` (key -> value, e.g. ``parse_config(...).explicit``) on top: the config
    of a resumed run (train.py) and of a run's checkpoint (eval.py, export.py, precompute_feature_maps.py)."""
    base = load_run_config(run_config_path, default_path)
    given = explicit.get("model")
    if given is not None and given != base.model:
        raise UserError(
            f"--model {given} was given, but {what} comes from a '{base.model}' run ({run_config_path}); drop --model"
        )
    apply_overrides(base, explicit, default_path)
    base.explicit = explicit
    return base


def apply_overrides(cfg, updates, default_path=DEFAULT_CONFIG, where="the command line"):
    """Apply ``updates`` (key -> value or string) to ``cfg`` with the same checks as :func:`parse_config`."""
    schema = load_schema(cfg.model, default_path)
    _apply(cfg, updates, schema, where, (), default_path)
    validate(cfg, schema.choices)
    return cfg


def config_to_yaml(cfg):
    """The resolved config as YAML text (keys sorted)."""
    plain = {k: v for k, v in cfg.items() if k != "config_path"}
    return yaml.safe_dump(plain, sort_keys=True, default_flow_style=False)
