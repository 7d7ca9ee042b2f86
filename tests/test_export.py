"""Export: SavedModel (TF Serving) and TFLite fp32/fp16/dynamic/int8 (full, mixed)/16x8, validated,
float32 rebuilds of mixed-precision checkpoints, plus error paths.

Models are tiny and trained for a few steps on real cats-vs-dogs JPEGs, so exports see
non-trivial weights and BatchNorm statistics; every export is checked against the Keras model.
"""
import json
import os
import stat
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kconvnext.export as kx
from kconvnext.commands import main
from kconvnext.data import augment as data_augment
from kconvnext.data import pipeline as data_pipeline
from kconvnext import files, run_folder
from kconvnext import precision
from kconvnext.export import paths, preprocess, quantization, tflite, validate
from kconvnext.export import saved_model as sm
from kconvnext.layers.grouped_conv import GroupedConv2D
from kconvnext.models import build_convnext, build_resnet

CLASSES = ["cats", "dogs"]


def _train_images(catsdogs_dir, image_size, per_class=8):
    pixels, labels = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((catsdogs_dir / "train" / name).glob("*.jpg"))[:per_class]:
            pixels.append(preprocess.decode_and_preprocess(tf.constant(path.read_bytes()), image_size).numpy())
            labels.append(label)
    return np.stack(pixels), keras.utils.to_categorical(labels, 2)


def _fit(model, x, y, steps=3):
    """A few training steps, run eagerly: for these tiny models tracing a train step costs 6-7 s and
    two eager steps 1-4 s. Then compiled again, keeping the trained optimizer, so the checkpoint
    saved from it is what a graph-mode run saves (run_eagerly=False in its compile config)."""
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss, run_eagerly=True)
    model.fit(x, y, batch_size=8, epochs=steps * 8 // len(x) or 1, verbose=0)
    model.compile(optimizer=model.optimizer, loss=loss, jit_compile=False)
    return model


@pytest.fixture(scope="session")
def convnext_run(tmp_path_factory, catsdogs_dir):
    """A run folder: checkpoints/last.keras (tiny ConvNeXt, 48 px, trained 4 steps) + run.json."""
    run = tmp_path_factory.mktemp("run")
    (run / "checkpoints").mkdir()
    keras.utils.set_random_seed(0)
    model = build_convnext((1, 1, 1, 1), (8, 16, 32, 64), num_classes=2, input_shape=(48, 48, 3),
                           small_input=True, name="convnext_tiny_test")
    _fit(model, *_train_images(catsdogs_dir, 48))
    model.save(run / "checkpoints" / "last.keras")
    (run / "run.json").write_text(json.dumps({"class_names": CLASSES, "image_size": 48, "eval_crop_ratio": 0.875}))
    return run


@pytest.fixture(scope="session")
def resnext_file(tmp_path_factory, catsdogs_dir):
    """A bare .keras ResNeXt (32 px, groups=4, *native* grouped convs) with class_names.json beside it."""
    folder = tmp_path_factory.mktemp("resnext")
    keras.utils.set_random_seed(1)
    model = build_resnet("bottleneck", (1, 1, 1, 1), groups=4, base_width=4, num_classes=2,
                         input_shape=(32, 32, 3), small_input=True, grouped_conv_implementation="native",
                         name="resnext_tiny_test")
    _fit(model, *_train_images(catsdogs_dir, 32))
    model.save(folder / "model.keras")
    (folder / "class_names.json").write_text(json.dumps(CLASSES))
    return folder / "model.keras"


def _keras_model(run):
    return keras.saving.load_model(run / "checkpoints" / "last.keras", compile=False)


def _saved_model_proto(saved_model_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    return proto


def _no_temp_left(folder):
    leftovers = [p.name for p in Path(folder).rglob(".*tmp-*")] + [p.name for p in Path(folder).rglob(".*old-*")]
    assert not leftovers, leftovers


# ------------------------------------------------------------------ preprocessing geometry

def test_agreement_counts_the_images_an_error_of_its_size_can_flip():
    reference = np.array([[0.9, 0.1], [0.52, 0.48], [0.3, 0.7], [0.49, 0.51]], np.float32)
    shift = np.array([[0.0, 0.0], [-0.03, 0.03], [0.01, -0.01], [0.02, -0.02]], np.float32)
    agreement = validate.compare("tflite int8", reference + shift, reference)
    assert agreement.top1_agreement == 0.5 and agreement.max_abs_diff == pytest.approx(0.03)
    # Keras margins 0.8, 0.04, 0.4, 0.02: only the two within 2 x 0.03 can flip, and both did.
    assert agreement.within_reach == 2
    assert "2 image(s) with a Keras top-1 margin within 2x that" in agreement.line()
    assert "margin" not in validate.compare("fp32", reference, reference).line()


def test_export_preprocessing_is_the_validation_pipelines():
    # 300x400 -> shorter side 256 (224 / 0.875), then the central 224 crop, via kconvnext.data.
    image = np.arange(300 * 400 * 3, dtype=np.float32).reshape(300, 400, 3) % 251
    out = preprocess.eval_resize_crop(image.astype(np.uint8), 224).numpy()
    expected = tf.clip_by_value(data_augment.center_crop(tf.constant(image), 224, 0.875), 0, 255).numpy()
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    assert preprocess.eval_resize_crop(np.zeros((400, 300, 3)), 48).shape == (48, 48, 3)
    png = tf.io.encode_png(image.astype(np.uint8)).numpy()
    np.testing.assert_array_equal(preprocess.decode_and_preprocess(tf.constant(png), 224).numpy(), expected)
    with pytest.raises(ValueError, match="eval_crop_ratio"):
        preprocess.eval_resize_crop(image, 224, 1.5)


# ------------------------------------------------------------------ SavedModel

@pytest.mark.slow
def test_saved_model_serving_signatures(convnext_run, catsdogs_dir, tmp_path):
    result = kx(convnext_run, validation_dir=catsdogs_dir / "validation", num_validation=8)
    target = convnext_run / "export" / "convnext_tiny_test" / "1"
    assert result.path == target and (target / "saved_model.pb").is_file()
    assert json.loads((target / sm.METADATA_FILE).read_text())["class_names"] == CLASSES
    assert [a.max_abs_diff <= 1e-4 for a in result.validation] == [True, True]
    assert "8 images from" in result.validation[0].images
    _no_temp_left(convnext_run / "export")

    # The signatures TF Serving (and `saved_model_cli show --all`) reads from saved_model.pb.
    signatures = _saved_model_proto(target).meta_graphs[0].signature_def
    assert {"serving_default", "serving_pixels"} <= set(signatures)
    outputs = {"probabilities", "class_index", "class_name", "class_names"}
    assert set(signatures["serving_default"].inputs) == {"image_bytes"}
    assert signatures["serving_default"].inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    assert set(signatures["serving_pixels"].inputs) == {"images"}
    assert set(signatures["serving_default"].outputs) == set(signatures["serving_pixels"].outputs) == outputs

    # A JPEG through the string signature == the Keras model on the same image, read and
    # preprocessed by the evaluation pipeline's own functions (kconvnext.data).
    jpegs = sorted((catsdogs_dir / "validation" / "dogs").glob("*.jpg"))[:2]
    model = _keras_model(convnext_run)
    pixels = np.stack([
        tf.clip_by_value(data_augment.center_crop(data_pipeline.decode_file(str(p)), 48, 0.875), 0, 255).numpy()
        for p in jpegs])
    expected = validate.softmax(model.predict(pixels, verbose=0))
    loaded = tf.saved_model.load(str(target))
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([p.read_bytes() for p in jpegs]))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)
    np.testing.assert_array_equal(out["class_index"].numpy(), expected.argmax(-1))
    assert [n.decode() for n in out["class_name"].numpy()] == [CLASSES[i] for i in expected.argmax(-1)]
    assert out["class_names"].numpy().tolist() == [[b"cats", b"dogs"]] * 2
    out = loaded.signatures["serving_pixels"](images=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)

    # Never overwrites: the next export is version 2; an explicit existing version needs overwrite.
    with pytest.raises(FileExistsError, match="--overwrite"):
        kx(convnext_run, version=1, verbose=False)
    second = kx(convnext_run, num_validation=4, verbose=False)
    assert second.path.name == "2" and "random" in second.validation[0].images
    assert paths.existing_versions(target.parent) == [1, 2]


def _tiny_model():
    keras.utils.set_random_seed(2)
    return build_convnext((1,), (8,), num_classes=2, input_shape=(32, 32, 3), small_input=True, name="m")


def test_exports_trace_the_model_for_one_signature_only(tmp_path, catsdogs_dir):
    """SavedModel: serving_default decodes bytes and then runs serving_pixels' concrete function. Neither
    the SavedModel nor TFLite's source SavedModel walks the model for lookup tables (ExportArchive.track,
    which traced its default save signature too). So the model is traced for one signature (twice:
    TensorFlow traces a new tf.function's first concrete function twice): it was 5 and 3 times.
    ConvNeXt-T at 64 px: SavedModel 7.0 -> 4.05 s, TFLite's source 4.5 -> 3.3 s."""
    model, calls = _tiny_model(), []
    call = model.call
    model.call = lambda *args, **kwargs: (calls.append(1), call(*args, **kwargs))[1]
    sm.write_saved_model(model, tmp_path / "1", class_names=CLASSES, image_size=32, crop_ratio=0.875)
    assert len(calls) <= 2
    images = validate.folder_images(catsdogs_dir / "validation", 2)
    pixels = validate.preprocess_all(images.encoded, 32, 0.875)
    by_bytes, by_pixels = sm.run_signatures(tmp_path / "1", images.encoded, pixels)
    np.testing.assert_allclose(by_bytes["probabilities"], validate.keras_probabilities(model, pixels), atol=1e-5)
    np.testing.assert_allclose(by_pixels["probabilities"], by_bytes["probabilities"], atol=1e-6)
    calls.clear()
    with tflite.batch1_saved_model(model, 32):
        assert len(calls) <= 2


def test_tflite_runs_on_every_core_unless_told(monkeypatch):
    """The Runner (export checks, eval/predict of .tflite, the benchmarks) gave the interpreter no
    thread count, and LiteRT then runs XNNPACK on one thread: ResNet-50 int8 took 152 ms instead of
    72 ms with both cores of the 2-core CI machine (benchmarks/int8_speed.py)."""
    from ai_edge_litert import interpreter as litert

    seen = []

    class Recording(litert.Interpreter):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("num_threads"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(litert, "Interpreter", Recording)
    content = tflite.convert(_tiny_model(), 32)
    pixels = np.zeros((1, 32, 32, 3), np.float32)
    tflite.Runner(model_content=content)(pixels)
    tflite.Runner(model_content=content, num_threads=1)(pixels)
    assert seen[-2:] == [os.cpu_count(), 1]


def test_saved_model_refused_when_it_disagrees(tmp_path, monkeypatch):
    real = sm.run_signatures

    def off(*args, **kwargs):
        by_bytes, by_pixels = real(*args, **kwargs)
        by_bytes["probabilities"] = by_bytes["probabilities"] + 1e-3
        return by_bytes, by_pixels

    monkeypatch.setattr(sm, "run_signatures", off)
    out = tmp_path / "served"
    with pytest.raises(ValueError, match="Refusing to write .*serving_default.*disagrees"):
        kx(_tiny_model(), output=out, class_names=["a", "b"], num_validation=4, verbose=False)
    assert list(out.iterdir()) == []  # no version folder, no temp folder


# ------------------------------------------------------------------ TFLite

@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["none", "fp16", "dynamic", "int8_full"])
def test_tflite_variants(quantize, convnext_run, catsdogs_dir, tmp_path, capsys):
    out = tmp_path / f"model_{quantize}.tflite"
    args = ["export", str(convnext_run), "--format", "tflite", "--quantize", quantize, "--output", str(out),
            "--validation-dir", str(catsdogs_dir / "validation"), "--num-validation", "8",
            "--calibration-dir", str(catsdogs_dir / "train"), "--num-calibration", "16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "top-1 agreement" in printed and "max |dp|" in printed and " MB" in printed
    assert out.is_file()
    _no_temp_left(tmp_path)

    # Re-run the file independently (ai-edge-litert) against Keras on the eval-preprocessed images.
    images = validate.folder_images(catsdogs_dir / "validation", 8)
    pixels = validate.preprocess_all(images.encoded, 48, 0.875)
    expected = validate.keras_probabilities(_keras_model(convnext_run), pixels)
    runner = tflite.Runner(model_path=out)
    got = runner(pixels)
    ops = tflite.op_names(out.read_bytes())
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    diff = np.abs(got - expected).max()
    if quantize == "none":
        assert diff <= 1e-4
        assert runner.input["dtype"] == np.float32
    elif quantize in ("fp16", "dynamic"):
        assert diff < 0.05
    else:  # full integer: uint8 pixels in, all-int8 compute, float probabilities out
        assert runner.input["dtype"] == np.uint8
        assert "QUANTIZE" in ops and "int8_full calibrated on 16 images" in printed
        # TFLite has no int8 NEG: Keras' LayerNorm keeps one float NEG (of the mean) per LayerNorm.
        assert "ops computing in float32: NEG\n" in printed
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=0.02)
    assert runner.run_prepared(runner.prepare(pixels[:1])[0])["class_index"].shape == (1,)


@pytest.mark.slow
def test_resnext_grouped_convs_convert_to_builtins(resnext_file):
    model_before = keras.saving.load_model(resnext_file, compile=False)
    result = kx.export(resnext_file, format="tflite", num_validation=6)
    assert result.path == resnext_file.parent / "export" / "resnext_tiny_test_fp32.tflite"
    assert result.class_names == CLASSES  # from class_names.json
    assert result.validation[0].max_abs_diff <= 1e-4 and "random" in result.validation[0].images
    # Grouped convs become per-group CONV_2D + CONCATENATION, all built-in.
    assert {"CONV_2D", "SPLIT", "CONCATENATION"} <= set(result.ops), result.ops
    # The model's own setting is untouched.
    impls = {layer.implementation for layer in model_before._flatten_layers() if isinstance(layer, GroupedConv2D)}
    assert impls == {"native"}


def test_int8_keeps_convs_on_few_channels_in_float():
    """XNNPACK's int8 convolutions take input channels in blocks of 8, so on RGB pixels ResNet-50's
    7x7 stem took 2.6x its float32 time (14.0 vs 5.4 ms on one core, benchmarks/int8_speed.py) and the
    int8_full network ran at 0.99x fp32; with that conv in float, 0.95x at 99.5% agreement. `int8`
    therefore keeps every conv on fewer than 8 channels in float, for every family."""
    keras.utils.set_random_seed(0)
    resnet = build_resnet("basic", (1, 1, 1, 1), num_classes=2, input_shape=(32, 32, 3), small_input=True)
    assert quantization.float_layer_paths(resnet) == ["conv1"]
    assert quantization.resolve("int8", resnet) == "int8_mixed"
    assert quantization.resolve("int8_full", resnet) == "int8_full"
    # TFLite names a fused op after every op in it (the conv with its ReLU): any of them counts.
    assert quantization.in_layers("resnet_1/relu_1/Relu;resnet_1/conv1_1/convolution", ["conv1"])
    assert not quantization.in_layers("resnet_1/layer1_0_1/conv1_1/convolution", ["conv1"])


def _calibrated(source, catsdogs_dir, quantize, tmp_path, **kwargs):
    return kx.export(source, format="tflite", quantize=quantize, output=tmp_path / f"{quantize}.tflite",
                     validation_dir=catsdogs_dir / "validation", num_validation=8,
                     calibration_dir=catsdogs_dir / "train", num_calibration=8, verbose=False, **kwargs)


@pytest.mark.slow
def test_int8_for_convnext_keeps_only_layernorm_gelu_softmax_in_float(convnext_run, catsdogs_dir, tmp_path):
    result = _calibrated(convnext_run, catsdogs_dir, "int8", tmp_path)
    assert result.quantize == "int8_mixed" and any("is int8_mixed" in n for n in result.notes)
    content = result.path.read_bytes()
    float_ops = quantization.float_ops(content)
    norms = quantization.float_layer_paths(_keras_model(convnext_run))
    assert len(norms) == 10 and "stem/conv" in norms  # 9 LayerNorms (stem, 4 blocks, 3 downsamples,
    # head) and the stem's conv on RGB (test_int8_keeps_convs_on_few_channels_in_float)
    # Every float op is inside a LayerNorm or is a GELU/softmax, every LayerNorm is float, the rest integer.
    in_norms = [(op, tensor) for op, tensor in float_ops if quantization.in_layers(tensor, norms)]
    others = sorted(op for op, tensor in float_ops if not quantization.in_layers(tensor, norms))
    assert others == ["GELU"] * 4 + ["SOFTMAX"], others
    assert {"MEAN", "RSQRT", "SQUARED_DIFFERENCE"} <= set(result.float_ops)
    assert {path.split("/")[0] for path in norms} == {quantization._layer_segments(t)[0] for _, t in in_norms}
    int_ops = {name for name, _, _, results in quantization.op_details(content)
               if results and all(r == np.int8 for r in results)}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= int_ops and not {"GELU", "SOFTMAX"} & int_ops
    # What the float GELU/softmax buy: XNNPACK runs them (int8, each would split the graph). Left
    # out may be an int8 ADD whose input and output scales are too far apart for XNNPACK (a barely
    # trained block's layer-scale branch is ~1e-6 of the residual sum).
    delegation = tflite.delegation(content)
    assert set(delegation.outside) <= {"ARG_MAX(int8)", "ADD(int8)"}, delegation.line()
    assert delegation.partitions <= 1 + delegation.outside.get("ADD(int8)", 0), delegation.line()
    assert any(note.startswith("XNNPACK runs") for note in result.notes)
    check = result.validation[0]
    assert check.top1_agreement >= 7 / 8 and check.max_abs_diff < 0.1, check.line()


@pytest.mark.slow
def test_int8_full_for_resnext_is_full_integer_and_16x8_runs(resnext_file, catsdogs_dir, tmp_path):
    full = _calibrated(resnext_file, catsdogs_dir, "int8_full", tmp_path)
    assert full.quantize == "int8_full" and full.float_ops == []
    assert quantization.float_ops(full.path.read_bytes()) == []
    assert full.validation[0].top1_agreement >= 7 / 8, full.validation[0].line()
    wide = _calibrated(resnext_file, catsdogs_dir, "int16x8", tmp_path)
    assert wide.float_ops == []
    activations = {r for name, _, _, results in quantization.op_details(wide.path.read_bytes())
                   if name == "CONV_2D" for r in results}
    assert activations == {np.dtype(np.int16)}
    assert wide.validation[0].top1_agreement == 1.0 and wide.validation[0].max_abs_diff < 0.02


@pytest.mark.slow
def test_16x8_refused_for_layernorm_models(catsdogs_dir, tmp_path):
    with pytest.raises(ValueError, match="int16x8 but TFLite cannot run it.*int8_mixed"):
        kx.export(_tiny_model(), format="tflite", quantize="int16x8", output=tmp_path / "m.tflite",
                  class_names=["a", "b"], num_validation=2, calibration_dir=catsdogs_dir / "train",
                  num_calibration=2, verbose=False)
    assert list(tmp_path.iterdir()) == []


def _graph_dtypes(saved_model_dir):
    graph = _saved_model_proto(saved_model_dir).meta_graphs[0].graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {tf.dtypes.as_dtype(v.type).name for n in nodes for v in n.attr.values() if v.type}


@pytest.mark.slow
def test_bf16_checkpoint_exports_a_float32_graph(catsdogs_dir, tmp_path):
    keras.utils.set_random_seed(3)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_convnext((1,), (8,), num_classes=2, input_shape=(32, 32, 3), small_input=True, name="bf16net")
        _fit(model, *_train_images(catsdogs_dir, 32, per_class=4), steps=2)
    finally:
        keras.config.set_dtype_policy("float32")
    model.save(tmp_path / "bf16.keras")
    assert '"mixed_bfloat16"' in zipfile.ZipFile(tmp_path / "bf16.keras").read("config.json").decode()
    loaded = keras.saving.load_model(tmp_path / "bf16.keras", compile=False)
    assert precision.mixed_policies(loaded) == ["mixed_bfloat16"]

    # The reference: the same architecture built under float32 with the checkpoint's weights.
    reference = build_convnext((1,), (8,), num_classes=2, input_shape=(32, 32, 3), small_input=True, name="ref")
    reference.set_weights(loaded.get_weights())
    images = validate.folder_images(catsdogs_dir / "validation", 6)
    pixels = validate.preprocess_all(images.encoded, 32, 0.875)
    expected = validate.keras_probabilities(reference, pixels)
    bf16 = validate.softmax(np.asarray(model(pixels, training=False), np.float32))
    assert np.abs(bf16 - expected).max() < 0.05  # bf16 only approximates it

    kw = dict(class_names=CLASSES, validation_dir=catsdogs_dir / "validation", num_validation=6, verbose=False)
    served = kx.export(tmp_path / "bf16.keras", output=tmp_path / "sm", **kw)
    assert any("mixed_bfloat16: rebuilt in float32" in n for n in served.notes)
    assert not {"bfloat16", "float16", "half"} & _graph_dtypes(served.path)
    out = tf.saved_model.load(str(served.path)).signatures["serving_pixels"](images=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)

    lite = kx.export(tmp_path / "bf16.keras", format="tflite", output=tmp_path / "m.tflite", **kw)
    interpreter = tflite.make_interpreter(model_path=lite.path)
    assert {t["dtype"] for t in interpreter.get_tensor_details()} <= {np.float32, np.int32}
    np.testing.assert_allclose(tflite.Runner(model_path=lite.path)(pixels), expected, atol=1e-5)

    # eval / predict load it the same way: float32, the export's numbers.
    from kconvnext.training.evaluate import load_trained_model

    evaluated, _ = load_trained_model(tmp_path / "bf16.keras")
    assert precision.mixed_policies(evaluated) == []
    np.testing.assert_allclose(validate.keras_probabilities(evaluated, pixels), expected, atol=1e-5)


def test_tflite_fp32_refused_when_it_disagrees(tmp_path, monkeypatch):
    real = tflite.Runner.__call__
    monkeypatch.setattr(tflite.Runner, "__call__", lambda self, pixels: real(self, pixels) + 2e-4)
    out = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match="Refusing to write .*tflite fp32 disagrees"):
        kx.export(_tiny_model(), format="tflite", output=out, class_names=["a", "b"], num_validation=4,
                  verbose=False)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temp


def test_unconvertible_op_is_a_clear_error(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: tf.math.cumprod(t, axis=1))(inputs)  # no TFLite builtin
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x), name="cumprod_net")
    with pytest.raises(ValueError, match="cannot be converted to TFLite .*built-in ops.*no TFLite built-in: Cumprod"):
        kx.export(model, format="tflite", output=tmp_path / "x.tflite", class_names=["a", "b"],
                  num_validation=2, verbose=False)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ argument / input errors

def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a .keras file"):
        run_folder.resolve_model_file(Path(__file__))
    with pytest.raises(ValueError, match="TFLite only"):
        kx.export(tmp_path, format="saved_model", quantize="fp16")
    with pytest.raises(ValueError, match="--calibration-dir"):
        kx.export(tmp_path, format="tflite", quantize="int8")
    with pytest.raises(ValueError, match="format must be one of"):
        kx.export(tmp_path, format="onnx")


def test_overwrite_and_metadata_errors(tmp_path):
    model = _tiny_model()
    existing = tmp_path / "m.tflite"
    existing.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        kx.export(model, format="tflite", output=existing, class_names=["a", "b"])
    assert existing.read_bytes() == b"old"
    with pytest.raises(ValueError, match="3 class names were given but m has 2 outputs"):
        kx.export(model, format="tflite", output=tmp_path / "n.tflite", class_names="a,b,c")
    with pytest.warns(UserWarning, match="class_0..class_1"):
        assert run_folder.resolve_class_names(None, {}, 2) == ["class_0", "class_1"]
    (tmp_path / "1").mkdir()
    assert paths.saved_model_target(tmp_path).name == "2"
    assert paths.saved_model_target(tmp_path, overwrite=True).name == "1"
    with pytest.raises(FileExistsError):
        paths.saved_model_target(tmp_path, version=1)


# ------------------------------------------------------------------ modes, labels, names (deployable exports)

@pytest.fixture
def umask():
    """Sets the process umask for a test (022 to start) and restores the caller's."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _modes(root):
    """{path relative to root's parent: permission bits} of root and everything under it."""
    root = Path(root)
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def _expect(modes, file_mode, dir_mode, root):
    want = {p: dir_mode if (Path(root).parent / p).is_dir() else file_mode for p in modes}
    assert modes == want, {p: oct(m) for p, m in modes.items()}


@pytest.mark.slow
def test_exports_are_readable_by_other_users_and_carry_labels(tmp_path, umask, capsys):
    model, names = _tiny_model(), ["cat", "dog"]
    served = kx.export(model, output=tmp_path / "serving" / "m", class_names=names, num_validation=2)
    lite = kx.export(model, format="tflite", output=tmp_path / "lite" / "m.tflite", class_names=names,
                     num_validation=2)
    printed = capsys.readouterr().out
    # 0644 / 0755 under umask 022, every file and folder (TF Serving runs as another uid).
    _expect(_modes(tmp_path / "serving"), 0o644, 0o755, tmp_path / "serving")
    _expect(_modes(tmp_path / "lite"), 0o644, 0o755, tmp_path / "lite")
    # Labels: one class a line, in the SavedModel's assets (a tracked Asset) and beside the .tflite.
    asset = Path(tf.saved_model.load(str(served.path)).labels_file.asset_path.numpy().decode())
    assert asset == served.path / "assets" / "labels.txt" and asset.read_text() == "cat\ndog\n"
    assert (lite.path.parent / "labels.txt").read_text().splitlines() == names
    # fp32 is "fp32" in every message, never "(none)"; the labels are named in the report.
    assert "Exported TFLite (fp32)" in printed and "tflite fp32: top-1" in printed
    assert "(none)" not in printed and lite.validation[0].name == "tflite fp32"
    assert f"labels (one class a line): {lite.path.parent / 'labels.txt'}" in printed
    assert kx.default_output(model, None, "tflite", "none").name == "m_fp32.tflite"

    # The modes come from the umask, not a fixed 0644.
    umask(0o027)
    kx.export(model, format="tflite", output=tmp_path / "private" / "m.tflite", class_names=names,
              num_validation=2, verbose=False)
    _expect(_modes(tmp_path / "private"), 0o640, 0o750, tmp_path / "private")


@pytest.mark.slow
def test_labels_beside_a_tflite_are_never_replaced_silently(tmp_path):
    model = _tiny_model()
    (tmp_path / "labels.txt").write_text("ant\nbee\n")
    with pytest.raises(FileExistsError, match="labels.txt lists other class names than cat, dog.*--overwrite"):
        kx.export(model, format="tflite", output=tmp_path / "m.tflite", class_names=["cat", "dog"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.txt"]  # refused before any work
    kx.export(model, format="tflite", output=tmp_path / "m.tflite", class_names=["ant", "bee"],
              num_validation=2, verbose=False)  # same classes: shared (e.g. fp32 and int8 of one model)
    kx.export(model, format="tflite", output=tmp_path / "m.tflite", class_names=["cat", "dog"],
              num_validation=2, overwrite=True, verbose=False)
    assert (tmp_path / "labels.txt").read_text() == "cat\ndog\n"
    with pytest.raises(ValueError, match="one line each"):
        kx.export(model, format="tflite", output=tmp_path / "n.tflite", class_names=["a\nb", "c"])


def test_checkpoint_and_run_json_writes_follow_the_umask(tmp_path, umask):
    files.write_json_atomic(tmp_path / "run" / "run.json", {"a": 1})
    files.save_model_atomic(_tiny_model(), tmp_path / "run" / "checkpoints" / "last.keras")
    with files.staged_file(tmp_path / "run" / "staged.bin") as tmp:
        tmp.write_bytes(b"x")
    with files.staged_dir(tmp_path / "run" / "staged") as tmp:
        (tmp / "f").write_text("x")
    _expect(_modes(tmp_path / "run"), 0o644, 0o755, tmp_path / "run")
    umask(0o077)
    files.write_json_atomic(tmp_path / "run" / "run.json", {"a": 2})
    with files.staged_file(tmp_path / "run" / "staged.bin") as tmp:
        tmp.write_bytes(b"y")
    assert stat.S_IMODE((tmp_path / "run" / "run.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "run" / "staged.bin").stat().st_mode) == 0o600
