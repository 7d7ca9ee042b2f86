"""RecipeAdamW computes torch.optim.AdamW's arithmetic (the recipe's optimizer in timm), checked
against torch's own parameters stored by tools/make_adamw_fixture.py (torch is not needed here).

Keras' AdamW adds epsilon to sqrt(v) before the bias correction; torch adds it to sqrt(v_hat)
after. For a layer-scale gamma (1e-6, gradients near epsilon) Keras' steps are a fraction of torch's
for the first thousand steps, so a port of the recipe would train the residual branches slower.
"""
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import jax_env
from kconvnext.training import RecipeAdamW

FIXTURE = Path(__file__).parent / "fixtures" / "adamw_torch.npz"


@pytest.fixture(scope="module")
def torch_run():
    with np.load(FIXTURE) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def _key(path, what):
    return f"{what}:{path.replace('/', '.')}"


def _variables(meta, arrays):
    """Variables with the fixture's paths (layer/name), so lr_scales and exclusions see them as a model's."""
    out = []
    for path in meta["params"]:
        layer, name = path.split("/")
        with keras.name_scope(layer):
            out.append(keras.Variable(arrays[_key(path, "init")], name=name))
    return out


def _optimizer(meta):
    scales = {p.split("/")[0]: spec["lr_scale"] for p, spec in meta["params"].items() if spec["lr_scale"] != 1.0}
    return RecipeAdamW(learning_rate=meta["lr"], weight_decay=meta["weight_decay"], beta_1=meta["beta_1"],
                       beta_2=meta["beta_2"], epsilon=meta["epsilon"], lr_scales=scales)


def _replay(optimizer, variables, meta, arrays, steps, grad_factor=1.0):
    """Apply the fixture's gradients for `steps` steps; {step: {path: value}} at the saved steps.

    Compiled as training runs it: tf.function around `apply` on TensorFlow, jax.jit around
    `stateless_apply` on JAX (whose stateful LossScaleOptimizer.apply does not run eagerly)."""
    grads = [arrays[_key(v.path, "grads")] * grad_factor for v in variables]
    optimizer.build(variables)
    if keras.backend.backend() == "jax":
        import jax

        state = ([v.value for v in optimizer.variables], [v.value for v in variables])
        stateless = jax.jit(optimizer.stateless_apply)

        def apply(step_grads):
            nonlocal state
            trainable, optimizer_state = stateless(state[0], step_grads, state[1])
            state = (optimizer_state, trainable)
            return trainable
    else:
        import tensorflow as tf

        @tf.function
        def apply(step_grads):
            optimizer.apply(step_grads, variables)
            return [v.value for v in variables]
    saved = {}
    for step in range(1, steps + 1):
        values = apply([keras.ops.convert_to_tensor(g[step - 1]) for g in grads])
        if step in meta["saved_steps"]:
            saved[step] = {v.path: keras.ops.convert_to_numpy(x) for v, x in zip(variables, values)}
    return saved


def _rtol(step):
    """float32 rounding: each step rounds p (half an ulp, 6e-8), in an op order that is torch's on
    TensorFlow but fused differently by XLA, so the runs drift apart like a random walk, ~ulp *
    sqrt(steps): measured up to 3e-7 (TensorFlow) and 4e-6 (JAX) relative at step 1000, 1e-6 at 100.
    Keras' own arithmetic is off by 1e-5..1e-4 on the ordinary parameters and 0.3-0.9 on gamma."""
    return max(1e-6, 2e-7 * np.sqrt(step))


def test_fixture_parameters_match_the_recipe(torch_run):
    meta, _ = torch_run
    specs = meta["params"]
    assert {p for p, s in specs.items() if not s["weight_decay"]} == {"stem/bias", "blocks/gamma"}
    assert {p for p, s in specs.items() if s["lr_scale"] != 1.0} == {"stem/kernel", "stem/bias"}


@pytest.fixture(scope="module")
def recipe_run(torch_run):
    """RecipeAdamW on the fixture's gradients for all its steps: {step: {path: value}}."""
    meta, arrays = torch_run
    variables = _variables(meta, arrays)
    optimizer = _optimizer(meta)
    decayed = {v.path for v in variables if optimizer._use_weight_decay(v)}
    assert decayed == {p for p, s in meta["params"].items() if s["weight_decay"]}
    return _replay(optimizer, variables, meta, arrays, meta["steps"])


@pytest.mark.slow
def test_layer_scale_gamma_moves_as_far_as_in_torch(torch_run, recipe_run):
    """gamma = 1e-6 with gradients ~1e-8: Keras' own AdamW moves it 0.07x, 0.17x, 0.34x, 0.73x as far
    as torch by steps 1, 10, 100, 1000."""
    _, arrays = torch_run
    start = arrays[_key("blocks/gamma", "init")]
    for step, values in recipe_run.items():
        want = arrays[_key("blocks/gamma", f"step{step}")] - start
        ratio = (values["blocks/gamma"] - start) / want
        np.testing.assert_allclose(ratio, 1.0, rtol=0, atol=1e-5, err_msg=f"gamma's displacement at step {step}")


def test_matches_torch_adamw_for_1000_steps(torch_run, recipe_run):
    """Every parameter (decayed, excluded, lr-scaled, tiny gamma) at steps 1, 10, 100 and 1000."""
    _, arrays = torch_run
    for step, values in recipe_run.items():
        for path, value in values.items():
            want = arrays[_key(path, f"step{step}")]
            np.testing.assert_allclose(value, want, rtol=_rtol(step), atol=0, err_msg=f"{path} at step {step}")


def test_loss_scaled_mixed_precision_wrapper_keeps_torch_arithmetic(torch_run):
    """keras' LossScaleOptimizer (mixed_bfloat16/float16 training) unscales, then runs this update."""
    meta, arrays = torch_run
    variables = _variables(meta, arrays)
    optimizer = keras.optimizers.LossScaleOptimizer(_optimizer(meta), initial_scale=2.0 ** 10)
    saved = _replay(optimizer, variables, meta, arrays, 10, grad_factor=2.0 ** 10)
    for path, value in saved[10].items():
        np.testing.assert_allclose(value, arrays[_key(path, "step10")], rtol=_rtol(10), atol=0, err_msg=path)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() == "jax", reason="this is the JAX run")
def test_matches_torch_on_jax_too():
    """The same checks on the JAX backend (a child process: the backend is fixed at import)."""
    pytest.importorskip("jax")
    env = jax_env(fast_compile=False)  # a numerical comparison
    # -n0: this one module in the child process itself (pytest.ini's -n auto started three test
    # processes, each importing Keras and JAX for it: 15 s, against 5 s in one).
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n0", "-p", "no:cacheprovider", __file__],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 passed, 1 skipped" in proc.stdout, proc.stdout[-1000:]
