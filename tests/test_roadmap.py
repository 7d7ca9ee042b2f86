"""The ConvNeXt paper's roadmap (kconvnext/roadmap/): ends equal resnet50 / convnext_t, every
step builds at 224 and 32 px, learns real CIFAR-10 images and reloads from `.keras`, the
intermediate block with ConvNeXt's settings is ConvNeXt's block, `cli.py roadmap` writes its table.

Per-step checks use reduced sizes (depths (1, 1, 1, 1); dims (16, 32, 64, 128) where a step has
dims; steps 0-2 keep ResNet-50's widths, so at these depths steps 0 and 1 coincide) and two
full-batch gradient steps on 16 images, to stay cheap on a 2-core CPU. Full sizes: the parameter
counts of steps 0 and 11, and step 3's GFLOPs at 224 px through the command.
"""
import json

import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.flops import count_params
from kconvnext.roadmap.models import STEP_NAMES, STEPS, build_roadmap, get_step, roadmap_step

TINY_DEPTHS = (1, 1, 1, 1)
TINY_DIMS = (16, 32, 64, 128)


def tiny(step, **kwargs):
    """A reduced-size version of `step` (steps 0-2 have ResNet-50's fixed widths)."""
    sizes = {"depths": TINY_DEPTHS}
    if get_step(step).design["block"] != "torchvision_bottleneck":
        sizes["dims"] = TINY_DIMS
    return build_roadmap(step, **sizes, **kwargs)


@pytest.fixture(scope="module")
def cifar_images(cifar10_dir):
    """16 real CIFAR-10 test images (float32, [0, 255]) and their labels."""
    from kconvnext.data.sources.cifar10 import read_batch

    images, labels = read_batch(cifar10_dir / "test_batch")
    return images[:16].astype("float32"), labels[:16]


def gradient_descent_losses(model, images, labels, updates=2, lr=0.03):
    """Losses before and after each full-batch gradient step on a fixed batch (deterministic).

    A hand-written eager loop: Keras' optimizers update variables one distributed merge-call at a
    time in eager mode, seconds per step for these models, and tracing a train step costs more.
    """
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(updates):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        for variable, grad in zip(model.trainable_variables, tape.gradient(loss, model.trainable_variables)):
            variable.assign_sub(lr * grad)
        losses.append(float(loss))
    return losses + [float(loss_fn(labels, model(images, training=True)))]


def test_steps_are_the_papers_roadmap_with_sourced_numbers():
    assert STEP_NAMES == (
        "roadmap_00_resnet50", "roadmap_01_stage_ratio", "roadmap_02_patchify_stem", "roadmap_03_resnextify",
        "roadmap_04_inverted_bottleneck", "roadmap_05_move_up_dwconv", "roadmap_06_kernel_7x7",
        "roadmap_07_gelu", "roadmap_08_fewer_activations", "roadmap_09_fewer_norms",
        "roadmap_10_layer_norm", "roadmap_11_convnext_t",
    )
    top1 = [s.paper_top1 for s in STEPS]
    assert top1 == [78.8, 79.4, 79.5, 80.5, 80.6, 79.9, 80.6, 80.6, 81.3, 81.4, 81.5, 82.0]
    for step in STEPS:
        assert step.source["top1"]
        assert step.paper_gflops is None or step.source["gflops"]
        assert kconvnext.get_spec(step.name).family == ("convnext" if step.index == 11 else "resnet")
        assert callable(getattr(kconvnext, step.name))
    assert get_step("gelu") is get_step(7) is get_step("roadmap_07_gelu")


def test_recipes_give_every_step_its_build_options():
    """What `train` / `compare` do with a roadmap name: the family's recipe, then create_model kwargs."""
    from kconvnext.training import load_recipe
    from kconvnext.training.model_setup import model_kwargs

    for name in ("roadmap_00_resnet50", "roadmap_09_fewer_norms", "roadmap_11_convnext_t"):
        config, _ = load_recipe(dataset="cifar10", family=kconvnext.get_spec(name).family)
        kwargs = model_kwargs(name, config, 10, "imagenet")
        assert kwargs["small_input"] is True and kwargs["input_shape"] == (32, 32, 3)
        assert kwargs["layer_scale_init"] == pytest.approx(1e-6)


@pytest.mark.slow
def test_first_and_last_steps_are_resnet50_and_convnext_t(cifar_images):
    # Sizes do not change weights: 64 px keeps the forward passes cheap.
    first = roadmap_step(0, input_shape=(64, 64, 3))
    assert count_params(first) == 25_557_032  # resnet50's (torchvision's) count, as test_models checks
    assert first.get_layer("layer3_5") is not None and "layer3_6" not in {l.name for l in first.layers}
    last = kconvnext.create_model("roadmap_11_convnext_t", input_shape=(64, 64, 3))
    reference = kconvnext.convnext_t(input_shape=(64, 64, 3))
    assert count_params(last) == count_params(reference) == 28_589_128
    assert [w.path for w in last.weights] == [w.path for w in reference.weights]  # checkpoints load alike
    # Random (not initial) weights, so that near-identity blocks cannot hide a difference.
    rng = np.random.default_rng(0)
    reference.set_weights([rng.normal(0.0, 0.05, w.shape).astype("float32") for w in reference.weights])
    last.set_weights(reference.get_weights())
    x = np.repeat(np.repeat(cifar_images[0][:2], 2, axis=1), 2, axis=2)
    logits = np.asarray(last(x, training=False))
    assert np.isfinite(logits).all() and logits.std() > 0
    np.testing.assert_array_equal(logits, np.asarray(reference(x, training=False)))
    keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("step", STEP_NAMES)
def test_every_step_builds_learns_real_cifar_images_and_round_trips(step, cifar_images, tmp_path):
    images, labels = cifar_images
    big = tiny(step, num_classes=7)
    first = big.get_layer("stem" if step.endswith("convnext_t") else "layer1_0")
    assert first.output.shape[1:3] == (56, 56)  # 224 / 4, as ResNet's stem + max-pool
    small = tiny(step, num_classes=10, input_shape=(32, 32, 3), small_input=True, drop_path_rate=0.1)
    assert small(images[:2]).shape == (2, 10)

    # Trained with the standard stems on the 32 px images (8x8 maps in stage 1), which keeps the
    # ResNet-50-wide steps 0-2 cheap; the small-input stems are the forward pass above.
    keras.utils.set_random_seed(0)
    model = tiny(step, num_classes=10, input_shape=(32, 32, 3))
    losses = gradient_descent_losses(model, images, labels)
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.1, losses

    expected = np.asarray(model(images[:4], training=False))
    path = tmp_path / f"{step}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(images[:4], training=False), expected, rtol=1e-5, atol=1e-5)
    keras.backend.clear_session()


def test_a_roadmap_step_is_a_plain_fittable_keras_model(cifar_images):
    images, labels = cifar_images
    model = tiny("fewer_norms", num_classes=10, input_shape=(32, 32, 3), small_input=True)
    assert isinstance(model, keras.Model)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), run_eagerly=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(images, labels, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("step", ["kernel_7x7", "layer_norm"])
def test_roadmap_steps_export_like_every_model(step, catsdogs_dir, tmp_path):
    """SavedModel and fp32 TFLite (refused beyond 1e-4 of Keras) and int8: step 6 (BatchNorm, 7x7
    depthwise in row bands) is integer but for its stem conv on RGB, step 10 keeps LayerNorm in float too."""
    model = tiny(step, num_classes=3, input_shape=(32, 32, 3), small_input=True)
    common = dict(class_names=["a", "b", "c"], num_validation=4, verbose=False)
    saved = kconvnext.export(model, output=tmp_path / "saved_model", **common)
    assert all(check.max_abs_diff <= 1e-4 for check in saved.validation)
    fp32 = kconvnext.export(model, format="tflite", output=tmp_path / "fp32.tflite", **common)
    assert fp32.validation[0].max_abs_diff <= 1e-4 and "DEPTHWISE_CONV_2D" in fp32.ops
    quantized = kconvnext.export(model, format="tflite", quantize="int8", output=tmp_path / "int8.tflite",
                                 calibration_dir=catsdogs_dir / "train", num_calibration=8, **common)
    assert quantized.quantize == "int8_mixed"
    if step == "kernel_7x7":
        assert sorted(quantized.float_ops) == ["CONV_2D", "SOFTMAX"], quantized.float_ops
    else:
        assert {"CONV_2D", "GELU", "SOFTMAX", "RSQRT"} <= set(quantized.float_ops)
    keras.backend.clear_session()


def test_roadmap_block_with_convnext_settings_is_the_convnext_block():
    """Step 10's block without a shape change is ConvNeXt's block: same weights, same output."""
    from kconvnext.layers import ConvNeXtBlock
    from kconvnext.roadmap.layers import RoadmapBlock

    x = np.random.default_rng(1).normal(size=(2, 9, 9, 32)).astype("float32")
    ours = RoadmapBlock(32, 128, kernel_size=7, layout="dwconv_first", activation="gelu", fewer_activations=True,
                        norm="layer", fewer_norms=True, layer_scale_init=0.5)
    theirs = ConvNeXtBlock(32, layer_scale_init=0.5)
    ours.build(x.shape)
    theirs.build(x.shape)
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [w.path.split("/", 1)[1] for w in theirs.weights]
    rng = np.random.default_rng(2)
    theirs.set_weights([rng.normal(0.0, 0.1, w.shape).astype("float32") for w in theirs.weights])
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6, atol=1e-6)


def test_layer_decay_groups_roadmap_layers_by_depth():
    from kconvnext.training.layer_decay import layer_decay_scales

    model = tiny(5, num_classes=10, input_shape=(32, 32, 3), small_input=True)
    scales = layer_decay_scales(model, "roadmap_05_move_up_dwconv", 0.5)
    assert scales["conv1"] == scales["conv1_norm"] == pytest.approx(0.5 ** 5)
    assert scales["layer1_0"] == pytest.approx(0.5 ** 4) and scales["layer4_0"] == pytest.approx(0.5)
    assert scales["head_fc"] == 1.0


def test_bad_arguments_name_the_option_and_the_steps_it_applies_to():
    with pytest.raises(ValueError, match=r"kernel_size.*steps 3-10"):
        roadmap_step(0, kernel_size=5)
    with pytest.raises(ValueError, match=r"dims.*steps 3-11"):
        roadmap_step("stage_ratio", dims=(8, 16, 32, 64))
    with pytest.raises(ValueError, match=r"roadmap_07_gelu|'gelu'"):
        roadmap_step("gelus")
    with pytest.raises(ValueError, match="0-11"):
        roadmap_step(12)
    with pytest.raises(ValueError, match="odd"):
        tiny(6, kernel_size=4)


@pytest.mark.slow
def test_roadmap_command_writes_table_plot_and_speed(tmp_path, capsys):
    """One full-size step at 224 px through `cli.py roadmap`: ResNeXt-ify, the step whose widths
    the paper states least explicitly (inner 96..768, residual 4x), counts the paper's 5.3 GFLOPs."""
    from kconvnext.commands import main

    out = tmp_path / "roadmap"
    assert main(["roadmap", "--steps", "resnextify", "--batch-size", "1", "--repeats", "1",
                 "--output", str(out)]) == 0
    (row,) = json.loads((out / "roadmap.json").read_text())
    assert row["model"] == "roadmap_03_resnextify" and row["paper_top1"] == 80.5
    assert row["gflops"] == pytest.approx(row["paper_gflops"], abs=0.05)
    assert row["params"] > 0 and row["img_per_s"] > 0 and row["paper_source"]["gflops"]
    assert (out / "roadmap.png").stat().st_size > 0
    assert "ResNeXt-ify" in (out / "roadmap.md").read_text()
    assert "ResNeXt-ify" in capsys.readouterr().out


def _write_compare_csv(path, rows):
    import csv

    from kconvnext.training.compare import COLUMNS

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for model, accuracy in rows:
            writer.writerow({"model": model, "dataset": "cifar10", "accuracy": accuracy, "params": 1, "gflops": 0.1})


@pytest.mark.slow
def test_roadmap_command_adds_compare_accuracy_per_step(tmp_path, capsys):
    """`--accuracy compare.csv`: the table holds the compared steps (in roadmap order), each with the
    accuracy compare measured, and the plot gets its accuracy panel."""
    from kconvnext.commands import main

    table = tmp_path / "compare.csv"
    _write_compare_csv(table, [("roadmap_11_convnext_t", 0.4125), ("resnet18", 0.9),
                               ("roadmap_02_patchify_stem", 0.3550)])
    out = tmp_path / "roadmap"
    assert main(["roadmap", "--image-size", "32", "--small-input", "--num-classes", "10", "--no-speed",
                 "--accuracy", str(table), "--output", str(out)]) == 0
    rows = json.loads((out / "roadmap.json").read_text())
    assert [(r["model"], r["accuracy"], r["accuracy_dataset"]) for r in rows] == [
        ("roadmap_02_patchify_stem", 0.355, "cifar10"), ("roadmap_11_convnext_t", 0.4125, "cifar10")]
    markdown = (out / "roadmap.md").read_text()
    assert "top-1 on cifar10 (%)" in markdown and "| 41.2 |" in markdown and "| 35.5 |" in markdown
    assert (out / "roadmap.png").stat().st_size > 0
    assert "yours" in capsys.readouterr().out


def test_roadmap_accuracy_file_errors_name_the_file(tmp_path):
    from kconvnext.roadmap.command import read_accuracy

    with pytest.raises(FileNotFoundError, match=r"--accuracy .*missing\.csv.*cli.py compare"):
        read_accuracy(tmp_path / "missing.csv")
    other = tmp_path / "other.csv"
    _write_compare_csv(other, [("resnet18", 0.9)])
    with pytest.raises(ValueError, match=r"other\.csv: no roadmap step"):
        read_accuracy(other)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,top1\nroadmap_00_resnet50,0.5\n")
    with pytest.raises(ValueError, match=r"wrong\.csv: not a compare.csv \(no accuracy, model column\)"):
        read_accuracy(wrong)
    bad = tmp_path / "bad.csv"
    _write_compare_csv(bad, [("roadmap_00_resnet50", "n/a")])
    with pytest.raises(ValueError, match=r"bad\.csv: accuracy 'n/a' of roadmap_00_resnet50"):
        read_accuracy(bad)
