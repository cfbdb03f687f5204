"""pix2pixHD as a user runs it on tiny demo data: a global run, a local run initialised from it with a frozen global
part and instance features, feature clustering, eval, export, and bad input."""

import json
import os

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import export as export_script
import precompute_feature_maps as precompute_script
import train as train_script
from src.cli import main_wrapper

TINY_HD = dict(
    model="pix2pixhd",
    label_nc=35,
    preprocess="none",
    ngf=8,
    ndf=4,
    d_layers=1,
    num_D=2,
    n_downsample_global=2,
    n_blocks_global=1,
    no_vgg_loss=True,
    batch_size=1,
    n_epochs=1,
    n_epochs_decay=0,
    print_freq=1,
    save_latest_freq=0,
    save_epoch_freq=1,
    num_samples=1,
    seed=3,
)


def _argv(**values):
    return [x for k, v in values.items() for x in (f"--{k}", str(v))]


@pytest.fixture(scope="module")
def hd_data(tmp_path_factory):
    from data.prepare_cityscapes import prepare_pix2pixhd
    from src.dataset.demo import write_cityscapes_tree

    root = tmp_path_factory.mktemp("hd")
    write_cityscapes_tree(root / "cs", 2, 1, height=32, width=64, seed=1)
    prepare_pix2pixhd(str(root / "cs"), str(root / "data"))
    return str(root / "data")


def _params(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items() if k.startswith(("G.", "E."))}


def test_global_then_local_with_features(hd_data, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    # 512p-style global run with instance features
    feat = dict(instance_feat=True, feat_num=3, nef=4, n_downsample_E=2)
    assert main_wrapper(train_script.run, _argv(**TINY_HD, **feat, dataroot=hd_data, outputs_dir=runs, name="g")) == 0
    run_g = os.path.join(runs, "g")
    assert os.path.isfile(os.path.join(run_g, "samples", "epoch_001.png"))

    # a 1024p-style run without its 512p checkpoint: one-line error, nothing written
    bad = dict(TINY_HD, **feat, netG="local", ngf=4, n_blocks_local=1, load_pretrain=os.path.join(runs, "missing"))
    assert main_wrapper(train_script.run, _argv(**bad, dataroot=hd_data, outputs_dir=runs, name="bad")) == 2
    assert "train the lower-resolution run first" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(runs, "bad"))

    # local enhancer around the global run's G; global part frozen in epoch 1; instance features
    local = dict(
        TINY_HD,
        netG="local",
        ngf=4,
        n_blocks_local=1,
        niter_fix_global=1,
        n_epochs_decay=1,
        load_pretrain=run_g,
        num_samples=0,
        **feat,
    )
    assert main_wrapper(train_script.run, _argv(**local, dataroot=hd_data, outputs_dir=runs, name="l")) == 0
    run_l = os.path.join(runs, "l")
    g512 = _params(os.path.join(run_g, "G_latest.ckpt"))
    ep1, ep2 = _params(os.path.join(run_l, "G_epoch_001.ckpt")), _params(os.path.join(run_l, "G_epoch_002.ckpt"))
    global_names = [k for k in ep1 if k.startswith("G.model.")]
    local_names = [k for k in ep1 if not k.startswith("G.model.")]
    assert global_names and local_names
    for k in global_names:  # loaded from the global run, and untouched while frozen
        np.testing.assert_array_equal(ep1[k], g512[k])
    assert any(not np.array_equal(ep1[k], ep2[k]) for k in global_names)  # trained after niter_fix_global
    assert any(not np.array_equal(ep1[k], ep2[k]) for k in local_names)
    assert os.path.isfile(os.path.join(run_l, "E_latest.ckpt"))

    # features: cluster, then eval with sampled clusters and with the encoded photo
    assert main_wrapper(precompute_script.run, ["--ckpt", os.path.join(run_l, "E_latest.ckpt")]) == 0
    clusters = np.load(os.path.join(run_l, "features_clustered_010.npy"))
    assert clusters.shape == (35, 10, 3) and np.isfinite(clusters).any()
    g_ckpt = os.path.join(run_l, "G_latest.ckpt")
    assert main_wrapper(eval_script.run, ["--ckpt", g_ckpt]) == 0
    metrics = json.load(open(os.path.join(run_l, "eval_test", "metrics.json")))
    assert metrics["num_images"] == 1 and 0 < metrics["psnr"] < 100
    assert (
        main_wrapper(
            eval_script.run, ["--ckpt", g_ckpt, "--use_encoded_image", "True", "--results_dir", str(tmp_path / "enc")]
        )
        == 0
    )
    assert os.path.isfile(tmp_path / "enc" / "index.html")

    # --input: label id maps at their own size (instance maps found in the sibling test_inst folder)
    inp_dir = str(tmp_path / "inp")
    assert (
        main_wrapper(
            eval_script.run,
            ["--ckpt", g_ckpt, "--input", os.path.join(hd_data, "test_label"), "--results_dir", inp_dir],
        )
        == 0
    )
    outputs = [f for f in os.listdir(os.path.join(inp_dir, "images")) if f.endswith("_output.png")]
    assert len(outputs) == 1

    # a cluster file of another feat_num: one-line error
    wrong = str(tmp_path / "wrong.npy")
    np.save(wrong, np.zeros((35, 10, 4), np.float32))
    capsys.readouterr()
    assert main_wrapper(eval_script.run, ["--ckpt", g_ckpt, "--cluster_path", wrong]) == 2
    assert "feat_num 3" in capsys.readouterr().err

    # export: (label ids, instance ids, feature map) -> image, checked against the checkpoint
    target = str(tmp_path / "export" / "hd")
    assert main_wrapper(export_script.run, ["--ckpt", g_ckpt, "--file_name", target, "--export_size", "32"]) == 0
    assert os.path.isfile(target + ".mindir")
    assert "max |diff|" in capsys.readouterr().out
    args = ["--ckpt", g_ckpt, "--file_name", target, "--export_size", "32", "--file_format", "ONNX"]
    # MindSpore 2.8 has no ONNX exporter for the 3-D average pooling of the instance-wise feature pooling: a clear
    # one-line error, and no file left behind
    assert main_wrapper(export_script.run, args) == 2
    assert "cannot export this network to ONNX" in capsys.readouterr().err
    assert not os.path.exists(target + ".onnx")
