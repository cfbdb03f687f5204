"""pix2pixHD as a user runs it on tiny demo data: a global run, a local run initialised from it with a frozen global
part and instance features, feature clustering and per-image feature files, a run on those files (load_features),
eval, export (MINDIR, ONNX checked with onnxruntime), and bad input."""

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
from src.pix2pixhd import features as F
from tests.conftest import TINY_HD, TINY_LOOP, cli_args, write_hd_dataset

# conftest's tiny pix2pixHD with 8 filters, trained for one epoch
TINY_HD = {**TINY_HD, **TINY_LOOP, "ngf": 8, "n_epochs_decay": 0, "num_samples": 1}


def _argv(**values):
    return cli_args(values)


@pytest.fixture(scope="module")
def hd_data(tmp_path_factory):
    return write_hd_dataset(tmp_path_factory.mktemp("hd"), seed=1)


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
    # and one feature file per training image: E's instance-averaged map, rebuilt from the instance map
    model = _load_run_generator(g_ckpt)
    source = model.make_source(model.cfg, "train", training=False)
    assert sorted(os.listdir(os.path.join(hd_data, "train_feat"))) == [n + ".npz" for n in sorted(source.names)]
    sample = source.get(1, np.random.default_rng(0))
    image, seg = sample["image"], sample["segments"]
    ids, vecs = F.load_feature_table(F.feature_file(hd_data, "train", source.names[1]), 3, "instance")
    encoded = model.encode_features(image[None], seg[None])[0]
    np.testing.assert_allclose(F.feature_map_from_table(ids, vecs, seg), encoded, atol=1e-6)

    # a 1024p_feat-style run on those files (no encoder), its samples, and eval with the clusters of its
    # load_pretrain run
    loaded = dict(TINY_HD, **feat, load_features=True, load_pretrain=run_l, netG="local", ngf=4, n_blocks_local=1)
    assert main_wrapper(train_script.run, _argv(**loaded, dataroot=hd_data, outputs_dir=runs, name="lf")) == 0
    run_lf = os.path.join(runs, "lf")
    assert not os.path.exists(os.path.join(run_lf, "E_latest.ckpt"))
    assert os.path.isfile(os.path.join(run_lf, "samples", "epoch_001.png"))
    lf_eval = str(tmp_path / "lf_eval")
    assert (
        main_wrapper(eval_script.run, ["--ckpt", os.path.join(run_lf, "G_latest.ckpt"), "--results_dir", lf_eval]) == 0
    )
    assert os.path.isfile(os.path.join(lf_eval, "index.html"))
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
    # ONNX (the local enhancer's average pooling in its export form): onnxruntime gives the checkpoint's output on
    # inputs other than the ones export.py checked with
    args = ["--ckpt", g_ckpt, "--file_name", target, "--export_size", "32", "--file_format", "ONNX"]
    assert main_wrapper(export_script.run, args) == 0
    assert "max |diff|" in capsys.readouterr().out
    _check_onnx_against_checkpoint(target + ".onnx", g_ckpt, with_features=True)


def _load_run_generator(g_ckpt):
    """The model of a run with its G (and E) loaded, as eval.py builds it (features from the encoder)."""
    from src.cli import config_for_checkpoint
    from src.device import init_env
    from src.evaluation import load_generator

    cfg, _ = config_for_checkpoint(["--ckpt", g_ckpt, "--use_encoded_image", "True"], "")
    cfg.test_mode = "eval"
    return load_generator(cfg, init_env(cfg))[0]


def _check_onnx_against_checkpoint(onnx_path, g_ckpt, with_features):
    """onnxruntime on ``onnx_path`` equals the checkpoint's generator (eager, training-time layer forms)."""
    import onnxruntime as ort

    from src.pix2pixhd.inference import InferenceNet

    model = _load_run_generator(g_ckpt)
    cfg = model.cfg
    net = InferenceNet(model.G, cfg.label_nc, cfg.no_instance, with_features)  # not in its export form
    net.set_train(False)
    rng = np.random.default_rng(11)
    label = np.kron(rng.integers(0, 35, (1, 1, 4, 4)), np.ones((8, 8), np.int64)).astype(np.int32)
    inst = (label * 1000 + (np.arange(32)[None, None, None] >= 16)).astype(np.int32)
    inputs = [label, inst] + ([rng.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)] if with_features else [])
    expected = net(*[ms.Tensor(a) for a in inputs]).asnumpy()
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), inputs)})[0]
    assert got.shape == expected.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(got, expected, atol=1e-4)
