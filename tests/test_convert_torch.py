"""Importing reference PyTorch checkpoints without PyTorch (issue: use the published pretrained models).

The ``.pth`` fixtures and their expected outputs were written once by PyTorch 2.13 from tiny networks with the
module layout of the references (see tests/fixtures/torch/README.md); here they go through the reader, the name
mapping and our networks, and the outputs must equal PyTorch's to 1e-4.
"""

import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from src.config import parse_config
from src.convert.run import run_conversion
from src.convert.torch_reader import read_state_dict
from src.errors import UserError
from tests.conftest import REPO
from tests.torch_pth import Reduce, vgg19_state, write_pth

FIX = os.path.join(REPO, "tests", "fixtures", "torch")
TOL = 1e-4

# fixture, --model, --convert_net, extra flags, options the conversion must infer
CASES = [
    ("pix2pix_unet5_batch", "pix2pix", "G", [], dict(g_layers=5, ngf=2, norm="batch")),
    ("cyclegan_resnet2_instance_legacy", "cyclegan", "G", [], dict(netG="resnet", g_layers=2, ngf=4, norm="instance")),
    (
        "cyclegan_resnet1_batch_zero_dropout",
        "cyclegan",
        "G",
        [],
        dict(netG="resnet", g_layers=1, norm="batch", pad_mode="CONSTANT", use_dropout=True),
    ),
    ("cyclegan_unet5_instance_gray", "cyclegan", "G", [], dict(netG="unet", input_nc=1, output_nc=3, norm="instance")),
    ("cyclegan_resnet1_instance_tar", "cyclegan", "G_B", [], dict(netG="resnet", g_layers=1)),
    ("pix2pixhd_global", "pix2pixhd", "G", ["--label_nc", "4"], dict(netG="global", ngf=4, n_downsample_global=2)),
    (
        "pix2pixhd_local2",
        "pix2pixhd",
        "G",
        [],
        dict(netG="local", ngf=2, n_local_enhancers=2, n_blocks_local=1, label_nc=4, no_instance=False),
    ),
    ("pix2pixhd_encoder", "pix2pixhd", "E", [], dict(nef=4, n_downsample_E=2, feat_num=3)),
]


def _convert(tmp_path, fixture, model, net, extra=(), out_name=None):
    out = str(tmp_path / (out_name or f"{fixture}.ckpt"))
    argv = ["--model", model, "--convert_from_torch", os.path.join(FIX, fixture + ".pth"), "--out", out]
    cfg = parse_config(argv + ["--convert_net", net] + list(extra))
    run_conversion(cfg)
    return out


@pytest.mark.parametrize("fixture", ["views_zip", "views_legacy"])
def test_reader_keeps_offsets_strides_and_dtypes(fixture):
    """Shared storages, offsets, transposed and stepped views, float16 and int64, in both pickle formats."""
    expected = np.load(os.path.join(FIX, "views.npz"))
    state = read_state_dict(os.path.join(FIX, fixture + ".pth"))
    assert list(state) == ["full", "rows", "cols", "transposed", "step", "half", "long"]
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)


@pytest.mark.parametrize("fixture,model,net,extra,inferred", CASES, ids=[c[0] for c in CASES])
def test_converted_network_equals_pytorch(tmp_path, fixture, model, net, extra, inferred):
    """The user path: convert, then eval's loader rebuilds the network from the checkpoint alone."""
    from src.cli import config_for_checkpoint
    from src.common.checkpoint import read_meta
    from src.evaluation import load_generator

    out = _convert(tmp_path, fixture, model, net, extra)
    meta = read_meta(out)
    for key, value in inferred.items():
        assert meta["config"][key] == value, key
    cfg, _ = config_for_checkpoint(["--ckpt", out], "test")
    assert cfg.model == model
    cfg.test_mode = "eval"
    data = np.load(os.path.join(FIX, fixture + ".npz"))
    if net == "E":  # the encoder is not a generator: build it from the stored options, load through the contract
        from src.common.checkpoint import load_network
        from src.pix2pixhd.networks import Encoder

        encoder = Encoder(cfg.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.norm)
        encoder.update_parameters_name("E.")
        load_network(encoder, out, "pix2pixhd", "E")
        encoder.set_train(False)
        got = encoder.model(ms.Tensor(data["input"])).asnumpy()  # before the instance-wise pooling
    else:
        model_obj, network = load_generator(cfg, None)
        assert network == ("G_A" if net == "G" and model == "cyclegan" else net)
        generator = model_obj.networks[network]
        generator.set_train(False)
        got = generator(ms.Tensor(data["input"])).asnumpy()
    assert got.shape == data["output"].shape
    diff = float(np.max(np.abs(got - data["output"])))
    assert diff <= TOL, f"max |ours - PyTorch| = {diff:.2e}"


def test_vgg19_from_torchvision_layout(tmp_path):
    """torchvision's vgg19 state dict -> our VGG19 slices: the five relu*_1 outputs equal PyTorch's."""
    from src.pix2pixhd.losses import VGG19Features, load_vgg19

    pth = write_pth(str(tmp_path / "vgg19.pth"), vgg19_state())
    expected = np.load(os.path.join(FIX, "vgg19_features.npz"))
    converted = str(tmp_path / "vgg19.ckpt")
    run_conversion(parse_config(["--model", "pix2pixhd", "--convert_from_torch", pth, "--convert_net", "vgg19",
                                 "--out", converted]))  # fmt: skip
    for source in (converted, pth):  # the converted checkpoint, and the .pth directly
        vgg = load_vgg19(VGG19Features(), source)
        outs = vgg(ms.Tensor(expected["input"]))
        for i, out in enumerate(outs):
            ref = expected[f"relu{i + 1}_1"]
            np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-4, atol=TOL, err_msg=f"{source} relu{i + 1}_1")


def test_wrong_architecture_lists_keys_and_writes_nothing(tmp_path):
    out = tmp_path / "G.ckpt"
    with pytest.raises(UserError, match="pix2pix here uses U-Net"):
        _convert(tmp_path, "cyclegan_resnet2_instance_legacy", "pix2pix", "G", out_name="G.ckpt")
    with pytest.raises(UserError, match="not a pix2pixHD generator|no place|get no value|expected entry"):
        _convert(tmp_path, "pix2pix_unet5_batch", "pix2pixhd", "G", out_name="G.ckpt")
    with pytest.raises(UserError, match="--ngf 8 was given"):
        _convert(tmp_path, "pix2pix_unet5_batch", "pix2pix", "G", ["--ngf", "8"], out_name="G.ckpt")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unmapped_and_missing_entries_are_listed(tmp_path):
    state = read_state_dict(os.path.join(FIX, "pix2pix_unet5_batch.pth"))
    state["model.extra.weight"] = np.zeros((1,), np.float32)
    del state["model.model.3.bias"]
    pth = write_pth(str(tmp_path / "edited.pth"), state)
    cfg = parse_config(["--model", "pix2pix", "--convert_from_torch", pth, "--out", str(tmp_path / "G.ckpt")])
    with pytest.raises(UserError) as info:
        run_conversion(cfg)
    text = str(info.value)
    assert "model.extra.weight" in text and "model.model.3.bias" in text and "\n" not in text
    assert not (tmp_path / "G.ckpt").exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    for name in ("pix2pix_unet5_batch", "cyclegan_resnet2_instance_legacy", "cyclegan_resnet1_instance_tar"):
        data = open(os.path.join(FIX, name + ".pth"), "rb").read()
        # (a tar file ends in zero padding blocks: cut into its members, not just the padding)
        for cut in (len(data) // 3, 2 * len(data) // 3 if name.endswith("tar") else len(data) - 40):
            path = tmp_path / f"{name}_{cut}.pth"
            path.write_bytes(data[:cut])
            with pytest.raises(UserError, match="truncated|corrupt|not a PyTorch"):
                read_state_dict(str(path))


def test_hostile_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "owned"
    evil = write_pth(str(tmp_path / "evil.pth"), {"w": Reduce("os", "system", (f"touch {marker}",))})
    with pytest.raises(UserError, match="refusing to load.*os.system"):
        read_state_dict(evil)
    assert not marker.exists()
    evil2 = write_pth(str(tmp_path / "evil2.pth"), {"w": Reduce("builtins", "eval", ("1+1",))})
    with pytest.raises(UserError, match="builtins.eval"):
        read_state_dict(evil2)


def test_cli_converts_and_eval_translates(tmp_path):
    """``export.py --convert_from_torch`` then ``eval.py --ckpt`` on an image folder, as a user runs them."""
    from PIL import Image

    out = tmp_path / "facades_G.ckpt"
    pth = os.path.join(FIX, "pix2pix_unet5_batch.pth")
    run = [sys.executable, "export.py", "--convert_from_torch", pth, "--model", "pix2pix", "--out", str(out)]
    proc = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and "converted" in proc.stdout
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(images / "a.png")
    results = tmp_path / "results"
    run = [sys.executable, "eval.py", "--ckpt", str(out), "--input", str(images), "--results_dir", str(results)]
    proc = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (results / "images" / "a_output.png").exists() or any(results.rglob("a_output.png"))
    # bad input from the command line: one line, exit 2, nothing written
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    run = [
        sys.executable,
        "export.py",
        "--convert_from_torch",
        str(bad),
        "--model",
        "pix2pix",
        "--out",
        str(tmp_path / "x.ckpt"),
    ]
    proc = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "bad.pth" in proc.stderr
    assert not (tmp_path / "x.ckpt").exists()
