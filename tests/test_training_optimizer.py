"""AdamW exclusions, layer-wise lr decay and the warmup-cosine schedule, on real model variables."""
import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.training import RecipeAdamW, WarmupCosine
from kconvnext.training.layer_decay import layer_decay_scales


def tiny_convnext():
    return kconvnext.create_model("convnext_atto", input_shape=(32, 32, 3), num_classes=3, small_input=True,
                                  depths=(1, 1, 4, 1), dims=(8, 16, 32, 64))


def test_schedule_warms_up_then_decays_to_min_and_reloads():
    s = WarmupCosine(peak_lr=1e-3, total_steps=100, warmup_steps=10, min_lr=1e-6)
    lr = [float(s(i)) for i in range(101)]
    assert lr[0] == pytest.approx(1e-4) and lr[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lr[:10], lr[1:10]))   # rising during warmup
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))    # then never rising
    assert lr[100] == pytest.approx(1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert float(again(55)) == pytest.approx(float(s(55)))


@pytest.mark.slow
def test_no_weight_decay_on_biases_norms_and_layer_scale(tmp_path):
    model = tiny_convnext()
    opt = RecipeAdamW(learning_rate=0.1, weight_decay=0.5)
    opt.build(model.trainable_variables)
    decayed = {v.path for v in model.trainable_variables if opt._use_weight_decay(v)}
    assert "stem/conv/kernel" in decayed and "head_fc/kernel" in decayed
    for path in ("stem/conv/bias", "stem/norm/gamma", "stem/norm/beta",
                 "stages_0_blocks_0/layer_scale/gamma", "head_norm/gamma", "head_fc/bias"):
        assert path not in decayed
    # The exclusions survive a .keras round trip (resume would otherwise decay everything).
    model.compile(optimizer=opt, loss="categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.optimizer, RecipeAdamW)
    assert {v.path for v in reloaded.trainable_variables if reloaded.optimizer._use_weight_decay(v)} == decayed


def test_layer_decay_scales_the_update_per_depth():
    model = tiny_convnext()
    scales = layer_decay_scales(model, "convnext_atto", 0.5)
    assert scales["head_fc"] == 1.0 and scales["stem"] < scales["stages_1_blocks_0"] < scales["stages_2_blocks_3"]
    assert scales["stages_2_blocks_0"] == scales["stages_2_blocks_2"]  # official grouping: 3 blocks per id
    opt = RecipeAdamW(learning_rate=1e-2, weight_decay=0.0, lr_scales=scales)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    opt.apply([keras.ops.ones_like(v) for v in variables], variables)
    # Adam's first step moves every weight by ~lr * scale regardless of the gradient's size.
    step = {v.path: float(np.max(np.abs(np.array(v) - b))) for v, b in zip(variables, before)}
    assert step["head_fc/kernel"] == pytest.approx(1e-2, rel=1e-3)
    assert step["stem/conv/kernel"] == pytest.approx(1e-2 * scales["stem"], rel=1e-3)


def test_resnet_layer_decay_groups_by_stage():
    model = kconvnext.create_model("resnet18", input_shape=(32, 32, 3), num_classes=2, small_input=True)
    scales = layer_decay_scales(model, "resnet18", 0.5)
    assert scales["conv1"] == 0.5 ** 5 and scales["layer1_0"] == 0.5 ** 4 and scales["layer4_1"] == 0.5
    assert scales["head_fc"] == 1.0


def _apply_graph_op_types(**optimizer_args):
    """The op types of one traced `apply` of RecipeAdamW on a small ConvNeXt's variables."""
    import tensorflow as tf

    model = tiny_convnext()
    variables = model.trainable_variables
    opt = RecipeAdamW(lr_scales=layer_decay_scales(model, "convnext_atto", 0.5), **optimizer_args)
    opt.build(variables)
    step = tf.function(lambda grads: opt.apply(grads, variables))
    graph = step.get_concrete_function([tf.TensorSpec(v.shape, v.dtype) for v in variables]).graph
    return [op.type for op in graph.get_operations()], variables


def test_a_step_builds_what_all_variables_share_once():
    """Tracing the train step (building its graph in Python) is most of a short run's time, and the
    optimizer's ops were ~60% of that graph. The bias corrections, the step count, the (layer-scaled)
    learning rates and the constants are the same for every variable of a step: built once per step
    (per lr scale), and each variable's update reads each of its three slots once."""
    kinds, variables = _apply_graph_op_types(learning_rate=1e-3, weight_decay=0.05)
    assert kinds.count("Expm1") == 2, "the two bias corrections: once a step"
    assert kinds.count("Sqrt") == len(variables) + 1, "sqrt(v) per variable, sqrt(bias correction 2) once"
    assert len(kinds) <= 30 * len(variables), f"{len(kinds)} ops for {len(variables)} variables"  # was 47


def test_the_ema_update_builds_the_step_momentum_once():
    """Keras' weight EMA builds the step's momentum (0 on the first step, then ema_momentum) for
    every variable: ~10 ops a variable, a quarter of a ConvNeXt train step's graph with the recipe's
    EMA. Once a step here, then one multiply-add and assign per averaged variable."""
    plain, variables = _apply_graph_op_types(learning_rate=1e-3, weight_decay=0.05)
    kinds, _ = _apply_graph_op_types(learning_rate=1e-3, weight_decay=0.05, use_ema=True, ema_momentum=0.9)
    assert kinds.count("NotEqual") == 1
    assert len(kinds) - len(plain) <= 8 * len(variables), f"{len(kinds) - len(plain)} EMA ops, {len(variables)} variables"
