"""Export-time rewrites (kconvnext/export/rewrites.py) and the XNNPACK delegation report.

The rewrites must compute what the Keras layer computes (only the TFLite graph changes, the
Keras model is left as it was), and the delegation report must find the ops XNNPACK leaves out.
"""
import itertools

import keras
import numpy as np
import pytest

from kconvnext.export import rewrites, tflite
from kconvnext.models import build_convnext


def test_row_bands_cover_the_kernel_in_bands_of_at_most_25_taps():
    assert rewrites.row_bands(7, 7) == [(0, 3), (3, 6), (6, 7)]
    assert rewrites.row_bands(9, 9) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    assert rewrites.row_bands(5, 5) == [(0, 5)]
    for kh, kw in ((7, 7), (11, 3), (6, 5)):
        bands = rewrites.row_bands(kh, kw)
        assert bands[0][0] == 0 and bands[-1][1] == kh and all(a[1] == b[0] for a, b in itertools.pairwise(bands))
        assert all((end - start) * kw <= rewrites.MAX_TAPS for start, end in bands)


def test_which_depthwise_convs_get_bands():
    def dw(kernel, **kw):
        return keras.layers.DepthwiseConv2D(kernel, **kw)

    assert rewrites.needs_bands(dw(7, padding="same"))
    assert not rewrites.needs_bands(dw(5, padding="same"))  # already one fast kernel
    assert not rewrites.needs_bands(dw(7, strides=2))
    assert not rewrites.needs_bands(dw(7, dilation_rate=2))
    assert not rewrites.needs_bands(keras.layers.Conv2D(4, 7))


@pytest.mark.parametrize("padding,kernel,multiplier", [("same", 7, 1), ("valid", 7, 2), ("same", (7, 3), 1)])
def test_banded_depthwise_equals_the_layer(padding, kernel, multiplier):
    layer = keras.layers.DepthwiseConv2D(kernel, padding=padding, depth_multiplier=multiplier, activation="relu",
                                         bias_initializer="random_normal")
    x = np.random.default_rng(0).normal(size=(2, 13, 11, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    banded = keras.ops.convert_to_numpy(rewrites.banded_depthwise_call(layer, x))
    np.testing.assert_allclose(banded, expected, atol=1e-5)


@pytest.mark.slow
def test_tflite_of_convnext_has_banded_depthwise_convs_and_matches_keras():
    model = build_convnext(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=3, input_shape=(32, 32, 3),
                           small_input=True)
    x = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(x)))
    plain = tflite.convert(model, 32, rewrite=False)
    banded = tflite.convert(model, 32)
    count = {name: [op["op_name"] for op in tflite.make_interpreter(c)._get_ops_details()].count("DEPTHWISE_CONV_2D")
             for name, c in (("plain", plain), ("banded", banded))}
    # One 7x7 per block -> 3x7 + 3x7 + 1x7 on the 16, 8 and 4 px stages; the 2 px stage keeps its
    # single conv (an int8 PAD wider than the map fails in XNNPACK: the int8_full conversion below).
    assert count == {"plain": 4, "banded": 3 * 3 + 1}
    assert all("call" not in layer.__dict__ for layer in model._flatten_layers())  # the Keras model is untouched
    got = tflite.Runner(model_content=banded)(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_delegation_report_finds_what_xnnpack_leaves_out():
    model = build_convnext(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=3, input_shape=(32, 32, 3),
                           small_input=True)
    calibration = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    fp32 = tflite.delegation(tflite.convert(model, 32))
    assert fp32.partitions == 1 and fp32.outside == {"ARG_MAX(float32)": 1} and fp32.delegated == fp32.ops - 1
    full = tflite.delegation(tflite.convert(model, 32, "int8_full", calibration))
    # int8 GELU and LayerNorm's int8 RSQRT have no XNNPACK kernel: each splits the graph.
    assert full.outside["GELU(int8)"] == 4 and full.outside["RSQRT(int8)"] >= 4 and full.partitions > 4
    assert "GELU(int8) x4" in full.line() and f"in {full.partitions} partition(s)" in full.line()
