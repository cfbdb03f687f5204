"""The hand-written caffemodel reader, on small caffemodel-format files written by a tiny protobuf encoder."""

import struct

import numpy as np
import pytest

from src.errors import UserError
from src.metrics import caffemodel as cm


# ---- a ~30-line protobuf encoder (enough of caffe.NetParameter to write weights) --------------------------------
def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _len_field(field, payload):
    return _key(field, 2) + _varint(len(payload)) + payload


def encode_blob(arr, legacy=False, packed=True, double=False):
    arr = np.asarray(arr)
    out = b""
    if legacy:
        dims = [1] * (4 - arr.ndim) + list(arr.shape)
        out += b"".join(_key(f, 0) + _varint(d) for f, d in zip((1, 2, 3, 4), dims))
    else:
        out += _len_field(7, _len_field(1, b"".join(_varint(d) for d in arr.shape)))
    flat = arr.reshape(-1)
    fmt, field, wire = ("<d", 8, 1) if double else ("<f", 5, 5)
    if packed:
        return out + _len_field(field, b"".join(struct.pack(fmt, float(v)) for v in flat))
    return out + b"".join(_key(field, wire) + struct.pack(fmt, float(v)) for v in flat)


def encode_net(layers, v1=False, **blob_kw):
    """``layers``: [(name, type, [arrays])] -> serialized NetParameter (``layer`` = 100, or V1 ``layers`` = 2)."""
    out = _len_field(1, b"testnet")
    for name, kind, blobs in layers:
        body = _len_field(4 if v1 else 1, name.encode())
        body += (_key(5, 0) + _varint(4)) if v1 else _len_field(2, kind.encode())
        body += _len_field(3 if v1 else 4, b"top")  # a field the reader must skip
        body += b"".join(_len_field(6 if v1 else 7, encode_blob(b, **blob_kw)) for b in blobs)
        out += _len_field(2 if v1 else 100, body)
    return out


def fcn8s_layers(widths, seed=0, scale=0.05):
    """Random blobs of an FCN-8s with ``widths`` in the Caffe layout."""
    rng = np.random.default_rng(seed)
    layers = []
    for name, (w_shape, b_shape) in cm.expected_shapes(widths).items():
        fan_in = int(np.prod(w_shape[1:]))
        blobs = [(rng.standard_normal(w_shape) * (scale if b_shape is None else np.sqrt(2.0 / fan_in))).astype("f4")]
        if b_shape is not None:
            blobs.append((rng.standard_normal(b_shape) * 0.1).astype("f4"))
        layers.append((name, "Convolution" if b_shape else "Deconvolution", blobs))
    return layers


def reduced_widths(div=16):
    w = {k: (v if k.startswith(("score", "upscore")) else max(1, v // div)) for k, v in cm.FCN8S_FULL_WIDTHS.items()}
    return w


# ---- tests ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "v1,legacy,packed,double",
    [(False, False, True, False), (True, True, True, False), (False, False, False, False), (True, True, False, True)],
)
def test_reader_round_trip(v1, legacy, packed, double):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3)).astype("f4")
    b = rng.standard_normal(4).astype("f4")
    d = rng.standard_normal((2, 2, 4, 4)).astype("f4")
    data = encode_net([("conv", "Convolution", [w, b]), ("relu", "ReLU", []), ("up", "Deconvolution", [d])], v1=v1,
                      legacy=legacy, packed=packed, double=double)  # fmt: skip
    layers = cm.parse_caffemodel_bytes(data)
    assert list(layers) == ["conv", "up"]
    np.testing.assert_array_equal(layers["conv"][0], w)
    assert layers["conv"][1].shape == (4,)  # legacy 1x1x1x4 bias squeezed
    np.testing.assert_array_equal(layers["conv"][1], b)
    np.testing.assert_array_equal(layers["up"][0], d)
    assert layers["up"][0].dtype == np.float32


def test_validate_and_convert(tmp_path):
    import mindspore as ms

    widths = reduced_widths()
    path = tmp_path / "tiny.caffemodel"
    path.write_bytes(encode_net(fcn8s_layers(widths)))
    layers = cm.read_caffemodel(path)
    assert cm.validate_fcn8s(layers, str(path), allow_reduced_width=True) == widths
    with pytest.raises(UserError, match=r"layer 'conv1_1' weight has shape \(4, 3, 3, 3\), expected \(64, 3, 3, 3\)"):
        cm.validate_fcn8s(layers, str(path))  # full width demanded
    out = tmp_path / "fcn.ckpt"
    cm.main(["--caffemodel", str(path), "--out", str(out), "--allow_reduced_width"])
    params = ms.load_checkpoint(str(out))
    np.testing.assert_array_equal(params["upscore8.weight"].asnumpy(), layers["upscore8"][0])
    np.testing.assert_array_equal(params["fc6_cs.bias"].asnumpy(), layers["fc6_cs"][1])


def test_wrong_network_is_a_clear_error(tmp_path):
    widths = reduced_widths()
    layers = fcn8s_layers(widths)
    voc = [(("fc6" if n == "fc6_cs" else "fc7" if n == "fc7_cs" else n), t, b) for n, t, b in layers]
    path = tmp_path / "voc.caffemodel"
    path.write_bytes(encode_net(voc))
    with pytest.raises(UserError, match=r"voc.caffemodel is not the Cityscapes FCN-8s: layer 'fc6_cs' is missing"):
        cm.validate_fcn8s(cm.read_caffemodel(path), str(path), allow_reduced_width=True)
    # 21 VOC classes instead of 20 outputs
    bad = [(n, t, [np.zeros((21,) + b[0].shape[1:], "f4"), np.zeros(21, "f4")] if n == "score_fr" else b)
           for n, t, b in layers]  # fmt: skip
    path.write_bytes(encode_net(bad))
    with pytest.raises(UserError, match=r"layer 'score_fr' weight has shape \(21, 256, 1, 1\), expected \(20, 256"):
        cm.validate_fcn8s(cm.read_caffemodel(path), str(path), allow_reduced_width=True)


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="caffemodel not found"):
        cm.read_caffemodel(tmp_path / "missing.caffemodel")
    junk = tmp_path / "deploy.prototxt"
    junk.write_text('name: "FCN"\nlayer { name: "data" type: "Input" }\n')
    with pytest.raises(UserError, match="deploy.prototxt"):
        cm.read_caffemodel(junk)


def test_full_width_table_counts_134m_parameters():
    total = sum(int(np.prod(w)) + (int(np.prod(b)) if b else 0) for w, b in cm.expected_shapes().values())
    assert total == cm.FCN8S_PARAM_COUNT == 134_473_084
