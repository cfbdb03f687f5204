import pytest
import yaml

from src.config import ALIASES, config_to_yaml, load_run_config, load_yaml_documents, parse_config
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
    assert all(v in parse_config([]) for v in ALIASES.values())


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
    keys = set(values) - {"model_defaults"}
    assert keys - set(helps) == set()
    assert set(choices) <= keys


def test_run_config_round_trip(tmp_path):
    cfg = parse_config(["--ngf", "24", "--direction", "BtoA"])
    path = tmp_path / "config.yaml"
    path.write_text(config_to_yaml(cfg))
    assert yaml.safe_load(path.read_text())["ngf"] == 24
    back = load_run_config(str(path))
    assert back.ngf == 24 and back.direction == "BtoA"
