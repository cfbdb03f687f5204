"""Export a trained generator: ``python export.py --ckpt RUN/G_latest.ckpt --file_format MINDIR|ONNX``.

The exported graph is the deterministic inference network (dropout off, batch norm with running statistics, i.e.
``test_mode eval``); after writing, it is loaded back (MINDIR with ``nn.GraphCell``, ONNX with onnxruntime when it
is installed) and its output compared with the checkpoint's on the same input.
"""

import os
import shutil
import sys
import tempfile

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError

EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
TOLERANCE = 1e-3


def fix_onnx_conv_transpose(path):
    """Drop the 4-D ``output_shape`` attribute MindSpore writes on ConvTranspose nodes.

    ONNX expects only the spatial dims there; onnxruntime rejects the file otherwise. Pads and strides already fix
    the output size, so removing it changes nothing. Needs the ``onnx`` package; returns False without it.
    """
    try:
        import onnx
    except ImportError:
        return False
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "ConvTranspose":
            for attr in list(node.attribute):
                if attr.name == "output_shape" and len(attr.ints) == 4:
                    node.attribute.remove(attr)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return True


def run_exported(path, file_format, x):
    """Run an exported file on ``x``; returns the output or None when no runtime is available for it."""
    import mindspore as ms
    from mindspore import nn

    if file_format == "MINDIR":
        return nn.GraphCell(ms.load(path))(ms.Tensor(x)).asnumpy()
    if file_format == "ONNX":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return None


def export_network(net, x, out_path, file_format):
    """Export ``net`` traced on ``x`` to ``out_path`` atomically (built in a temporary folder, then moved)."""
    import mindspore as ms

    folder = os.path.dirname(os.path.abspath(out_path)) or "."
    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".export.", dir=folder)
    try:
        base = os.path.join(tmp_dir, "net")
        ms.export(net, ms.Tensor(x), file_name=base, file_format=file_format)
        produced = base + EXTENSIONS[file_format]
        if not os.path.isfile(produced):
            raise UserError(f"MindSpore wrote no {file_format} file (is {file_format} supported on this device?)")
        if file_format == "ONNX":
            fix_onnx_conv_transpose(produced)
        os.replace(produced, out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def run(argv=None):
    import mindspore as ms

    from eval import load_generator
    from src.device import init_env

    cfg, _ = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError("file_format AIR can only be exported on Ascend; use MINDIR or ONNX here")
    env = init_env(cfg)
    cfg.test_mode = "eval"
    model, network = load_generator(cfg, env)
    net = model.networks[network]
    net.set_train(False)
    size = cfg.export_size or cfg.crop_size
    if size % model.size_multiple:
        raise UserError(f"export_size {size} must be a multiple of {model.size_multiple} for this generator")
    x = np.random.default_rng(0).uniform(-1, 1, (cfg.export_batch, cfg.input_nc, size, size)).astype(np.float32)
    base = cfg.file_name or os.path.splitext(os.path.abspath(cfg.ckpt))[0]
    out_path = base + EXTENSIONS[cfg.file_format]
    export_network(net, x, out_path, cfg.file_format)
    expected = net(ms.Tensor(x)).asnumpy()
    got = run_exported(out_path, cfg.file_format, x)
    size_mb = os.path.getsize(out_path) / 2**20
    if got is None:
        print(f"exported {out_path} ({size_mb:.1f} MB); no runtime installed to check it numerically")
        return
    diff = float(np.max(np.abs(got - expected)))
    if not np.isfinite(diff) or diff > TOLERANCE:
        os.remove(out_path)
        raise UserError(
            f"exported {cfg.file_format} output differs from the checkpoint by {diff:.3g} "
            f"(> {TOLERANCE}); the file was removed"
        )
    print(f"exported {out_path} ({size_mb:.1f} MB, input {list(x.shape)}); max |diff| vs checkpoint {diff:.2e}")


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
