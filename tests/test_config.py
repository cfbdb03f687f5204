import os
import pickle

import pytest
import yaml

from src.config import (
    ALIASES,
    Config,
    available_models,
    config_to_yaml,
    load_run_config,
    load_schema,
    load_yaml_documents,
    parse_config,
)
from src.errors import UserError


def test_defaults_and_model_defaults():
    cfg = parse_config([])
    assert cfg.model == "pix2pix"
    assert cfg.norm == "batch" and cfg.gan_mode == "vanilla" and cfg.g_layers == 8
    assert cfg.lambda_l1 == 100.0 and cfg.lr == pytest.approx(2e-4) and cfg.beta1 == 0.5


def test_cli_overrides_are_typed():
    cfg = parse_config(["--ngf", "16", "--lr", "1e-3", "--no_flip", "True", "--direction", "BtoA"])
    assert cfg.ngf == 16 and isinstance(cfg.ngf, int)
    assert cfg.lr == pytest.approx(1e-3)
    assert cfg.no_flip is True
    assert cfg.direction == "BtoA"


def test_overlay_then_cli(tmp_path):
    overlay = tmp_path / "recipe.yaml"
    overlay.write_text("ngf: 32\nbatch_size: 4\n")
    cfg = parse_config(["--config_path", str(overlay), "--batch_size", "2"])
    assert cfg.ngf == 32 and cfg.batch_size == 2


def test_seed_aliases():
    cfg = parse_config(["--g_ngf", "48", "--train_pic_size", "128"])
    assert cfg.ngf == 48 and cfg.crop_size == 128
    every_key = set().union(*(load_schema(m).values for m in available_models()))
    assert set(ALIASES.values()) <= every_key


def test_unknown_key_suggests_close_match(tmp_path):
    with pytest.raises(UserError, match="unknown config key 'ngff'.*ngf"):
        parse_config(["--ngff", "3"])
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("lamda_l1: 10\n")
    with pytest.raises(UserError, match="lamda_l1.*bad.yaml.*lambda_l1"):
        parse_config(["--config_path", str(overlay)])


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--norm", "group"], "norm.*batch, instance, none"),
        (["--model", "gan9000"], "unknown model 'gan9000'; valid models are: cyclegan, pix2pix"),
        (["--ngf", "abc"], "ngf.*integer"),
        (["--no_flip", "maybe"], "no_flip.*True or False"),
        (["--lr", "fast"], "lr.*number"),
    ],
)
def test_bad_values(argv, pattern):
    with pytest.raises(UserError, match=pattern):
        parse_config(argv)


def test_missing_overlay_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        parse_config(["--config_path", str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("ngf: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        parse_config(["--config_path", str(bad)])


def test_recipes_are_valid():
    import glob
    import os

    from src.config import REPO_ROOT

    recipes = glob.glob(os.path.join(REPO_ROOT, "configs", "*.yaml"))
    assert len(recipes) >= 7
    for path in recipes:
        parse_config(["--config_path", path])


def test_every_key_has_help():
    values, helps, choices = load_yaml_documents(parse_config.__globals__["DEFAULT_CONFIG"])
    assert set(values) - set(helps) == set() and set(choices) <= set(values)
    assert available_models() == ["cyclegan", "pix2pix", "pix2pixhd"]
    for model in available_models():
        schema = load_schema(model)
        assert set(schema.values) - set(schema.helps) == set(), model
        assert set(schema.choices) <= set(schema.values), model


def test_run_config_round_trip(tmp_path):
    cfg = parse_config(["--ngf", "24", "--direction", "BtoA"])
    path = tmp_path / "config.yaml"
    path.write_text(config_to_yaml(cfg))
    assert yaml.safe_load(path.read_text())["ngf"] == 24
    back = load_run_config(str(path))
    assert back.ngf == 24 and back.direction == "BtoA"


def _help(argv, capsys):
    with pytest.raises(SystemExit):
        parse_config(argv + ["--help"])
    return capsys.readouterr().out


def test_help_lists_the_shared_keys_and_the_selected_models_own(capsys):
    shared = _help([], capsys)
    assert "--lr" in shared and "--dataroot" in shared and "--gan_mode" in shared
    assert "--g_layers" not in shared and "--lambda_A" not in shared and "--n_local_enhancers" not in shared
    assert "--model NAME --help" in " ".join(shared.split())

    cyclegan = " ".join(_help(["--model", "cyclegan"], capsys).split())
    assert "--lambda_A" in cyclegan and "--t_g_layers" in cyclegan and "--lr" in cyclegan
    assert "residual blocks (resnet) or U-Net levels (unet)" in cyclegan
    assert "[choices: resnet, unet]" in cyclegan and "(default: 9)" in cyclegan
    for other in ("--n_local_enhancers", "--instance_feat", "--lambda_l1", "--t_gl_num", "--no_lsgan"):
        assert other not in cyclegan

    pix2pix = " ".join(_help(["--model", "pix2pix"], capsys).split())
    assert "U-Net levels" in pix2pix and "--lambda_l1" in pix2pix and "--netG" not in pix2pix
    hd = " ".join(_help(["--model", "pix2pixhd"], capsys).split())
    assert "--n_local_enhancers" in hd and "[choices: global, local]" in hd
    assert "--g_layers" not in hd and "--use_dropout" not in hd and "--pool_size" in hd


@pytest.mark.parametrize(
    "model, key, pattern",
    [
        (
            "cyclegan",
            "n_local_enhancers",
            "'n_local_enhancers' in the command line is a key of pix2pixhd, not of model cyclegan",
        ),
        ("pix2pix", "lambda_A", "'lambda_A' in the command line is a key of cyclegan, not of model pix2pix"),
        ("pix2pixhd", "gl_num", r"'gl_num' \(g_layers\) .* not of model pix2pixhd"),
        ("cyclegan", "t_gl_nun", "unknown config key 't_gl_nun' .*model cyclegan.*Did you mean t_g_layers"),
    ],
)
def test_a_key_the_model_does_not_have_is_a_one_line_error(model, key, pattern):
    with pytest.raises(UserError, match=pattern) as err:
        parse_config(["--model", model, f"--{key}", "2"])
    assert "\n" not in str(err.value)


def test_a_key_of_another_model_in_an_overlay_or_overrides(tmp_path):
    overlay = tmp_path / "recipe.yaml"
    overlay.write_text("model: cyclegan\ninstance_feat: True\n")
    with pytest.raises(UserError, match="instance_feat.*recipe.yaml.*pix2pixhd, not of model cyclegan"):
        parse_config(["--config_path", str(overlay)])
    with pytest.raises(UserError, match="lambda_l1.*overrides.*not of model pix2pixhd"):
        parse_config([], overrides=dict(model="pix2pixhd", lambda_l1=1.0))


@pytest.mark.parametrize(
    "model, old, value, new, expected",
    [
        ("cyclegan", "t_gl_num", "6", "t_g_layers", 6),
        ("cyclegan", "t_slope", "0.1", "t_alpha", 0.1),
        ("cyclegan", "t_norm_mode", "batch", "t_norm", "batch"),
        ("cyclegan", "gl_num", "6", "g_layers", 6),
        ("cyclegan", "model_g", "unet", "netG", "unet"),
        ("pix2pix", "need_dropout", "False", "use_dropout", False),
        ("pix2pix", "slope", "0.1", "alpha", 0.1),
        ("pix2pixhd", "niter", "7", "n_epochs", 7),
        ("pix2pixhd", "niter_decay", "3", "n_epochs_decay", 3),
        ("pix2pixhd", "resize_or_crop", "crop", "preprocess", "crop"),
        ("pix2pixhd", "n_layers_D", "2", "d_layers", 2),
        ("pix2pixhd", "no_lsgan", "True", "gan_mode", "vanilla"),
        ("pix2pixhd", "no_lsgan", "False", "gan_mode", "lsgan"),
    ],
)
def test_old_names_are_aliases(tmp_path, model, old, value, new, expected):
    cfg = parse_config(["--model", model, f"--{old}", value])
    assert cfg[new] == expected and old not in cfg
    overlay = tmp_path / "seed.yaml"
    overlay.write_text(f"model: {model}\n{old}: {value}\n")
    assert parse_config(["--config_path", str(overlay)])[new] == expected


def test_configs_use_the_new_teacher_names():
    from src.config import REPO_ROOT

    for name in os.listdir(os.path.join(REPO_ROOT, "configs")):
        if name.endswith(".yaml"):
            text = open(os.path.join(REPO_ROOT, "configs", name), encoding="utf-8").read()
            assert "t_gl_num" not in text and "t_norm_mode" not in text and "no_lsgan" not in text, name


OLD_CYCLEGAN_RUN = """\
model: cyclegan
dataroot: {data}
netG: resnet
g_layers: 6
norm: instance
gan_mode: lsgan
use_dropout: false
lambda_l1: 100.0
lambda_gan: 1.0
t_gl_num: 6
t_slope: 0.1
t_norm_mode: batch
n_local_enhancers: 1
instance_feat: false
no_lsgan: false
label_nc: 35
pool_size: 50
crop_size: 64
config_note: written with the flat key set
"""


def test_an_old_flat_run_config_loads(tmp_path):
    """A config.yaml saved before the per-model files: every key of every model, the teacher's old names."""
    path = tmp_path / "config.yaml"
    path.write_text(OLD_CYCLEGAN_RUN.format(data=tmp_path))
    cfg = load_run_config(str(path))
    assert cfg.model == "cyclegan" and cfg.g_layers == 6 and cfg.use_dropout is False and cfg.crop_size == 64
    assert (cfg.t_g_layers, cfg.t_alpha, cfg.t_norm) == (6, 0.1, "batch")
    assert "n_local_enhancers" not in cfg and "lambda_l1" not in cfg and "t_gl_num" not in cfg
    # a pix2pixHD run of the old no_lsgan flag: it won over gan_mode, and still does
    hd = tmp_path / "hd.yaml"
    hd.write_text("model: pix2pixhd\ngan_mode: lsgan\nno_lsgan: true\nuse_dropout: false\ng_layers: 8\nnetD: basic\n")
    cfg = load_run_config(str(hd))
    assert cfg.gan_mode == "vanilla" and "use_dropout" not in cfg and "no_lsgan" not in cfg
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: pix2pix\nngff: 3\n")
    with pytest.raises(UserError, match="ngff.*bad.yaml.*ngf"):
        load_run_config(str(bad))


def test_explicit_is_an_attribute_not_a_key():
    cfg = parse_config(["--model", "cyclegan", "--ngf", "16", "--t_gl_num", "3"])
    assert cfg.explicit == {"model": "cyclegan", "ngf": 16, "t_g_layers": 3}
    assert "explicit" not in cfg and "_explicit" not in cfg and "explicit" not in config_to_yaml(cfg)
    assert cfg.copy().explicit == cfg.explicit and pickle.loads(pickle.dumps(cfg)).explicit == cfg.explicit
    assert Config(a=1).explicit == {}


def _saved_run(tmp_path, model="pix2pixhd", **values):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    run = tmp_path / "runs" / "hd"
    run.mkdir(parents=True)
    cfg = parse_config([], overrides=dict(model=model, dataroot=str(data), outputs_dir=str(tmp_path / "runs"),
                                          name="hd", **values))  # fmt: skip
    (run / "config.yaml").write_text(config_to_yaml(cfg))
    (run / "G_latest.ckpt").write_bytes(b"")
    return run


@pytest.fixture
def run_calls(monkeypatch):
    import src.config

    calls, real = [], src.config.config_of_run
    monkeypatch.setattr(src.config, "config_of_run", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_resume_takes_the_runs_model_and_keys(tmp_path, run_calls):
    import train

    run = _saved_run(tmp_path, n_blocks_global=3, ngf=8)
    cfg = train.resolve_config(["--resume", str(run), "--niter_fix_global", "2", "--max_steps", "5"])
    assert cfg.model == "pix2pixhd" and cfg.n_blocks_global == 3 and cfg.ngf == 8
    assert cfg.niter_fix_global == 2 and cfg.max_steps == 5 and cfg.continue_train is True
    assert len(run_calls) == 1 and run_calls[0][0] == str(run / "config.yaml")
    with pytest.raises(UserError, match="--model cyclegan was given, but the run comes from a 'pix2pixhd' run"):
        train.resolve_config(["--resume", str(run), "--model", "cyclegan"])
    with pytest.raises(UserError, match="nothing to resume"):
        train.resolve_config(["--resume", str(tmp_path / "nope")])


def test_eval_takes_the_runs_model_and_keys(tmp_path, run_calls):
    from src.cli import config_for_checkpoint

    run = _saved_run(tmp_path, n_blocks_global=3)
    ckpt = str(run / "G_latest.ckpt")
    cfg, run_config = config_for_checkpoint(["--ckpt", ckpt, "--use_encoded_image", "True", "--no_lsgan", "True"], "")
    assert run_config == str(run / "config.yaml") and len(run_calls) == 1
    assert cfg.model == "pix2pixhd" and cfg.n_blocks_global == 3 and cfg.use_encoded_image is True
    assert cfg.gan_mode == "vanilla" and cfg.explicit == {
        "ckpt": ckpt,
        "use_encoded_image": True,
        "gan_mode": "vanilla",
    }
    with pytest.raises(UserError, match=f"--model pix2pix was given, but {ckpt} comes from a 'pix2pixhd' run"):
        config_for_checkpoint(["--ckpt", ckpt, "--model", "pix2pix"], "")
    with pytest.raises(UserError, match="g_layers.*not of model pix2pixhd"):
        config_for_checkpoint(["--ckpt", ckpt, "--g_layers", "3"], "")
    with pytest.raises(UserError, match="pass --ckpt"):
        config_for_checkpoint([], "")


def test_a_model_given_only_as_default_is_the_configs_model():
    cfg = parse_config([], default_model="cyclegan")
    assert cfg.model == "cyclegan" and cfg.norm == "instance" and cfg.explicit == {}
