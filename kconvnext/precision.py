"""Exports compute in float32 whatever dtype policy the model was trained under.

A checkpoint trained with mixed precision records `mixed_bfloat16` / `mixed_float16` in every
layer's config, so a loaded model computes in 16 bits and a SavedModel or TFLite file traced from
it would too (and TFLite's fp16/int8 modes would quantize an already-rounded graph). The
variables of a mixed-precision model are float32, so the same architecture rebuilt under the
float32 policy takes them unchanged and computes what the training graph approximated.
"""
import keras

FLOAT32 = "float32"


def _policy_name(dtype):
    """The policy name of a serialized `dtype` config entry (a string or a DTypePolicy dict)."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict) and "DTypePolicy" in str(dtype.get("class_name", "")):
        return (dtype.get("config") or {}).get("name")
    return None


def _is_mixed(name):
    return isinstance(name, str) and name.startswith("mixed_")


def _float32_config(config):
    """A copy of a serialized model with every mixed-precision `dtype` entry set to float32."""
    if isinstance(config, list):
        return [_float32_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "dtype" and _is_mixed(_policy_name(value)):
            out[key] = FLOAT32
        else:
            out[key] = _float32_config(value)
    return out


def mixed_policies(model):
    """Names of the non-float32 compute policies among the model's layers (sorted)."""
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    return sorted({layer.dtype_policy.name for layer in layers
                   if layer.dtype_policy.compute_dtype != FLOAT32})


def float32_model(model):
    """(model, note): `model` itself when it computes in float32, else a float32 rebuild with its weights.

    The rebuild runs under the float32 global policy so that sublayers a custom layer creates
    without passing its dtype come out float32 too; it is checked layer by layer.
    """
    policies = mixed_policies(model)
    if not policies:
        return model, None
    if any(not _is_mixed(name) for name in policies):
        raise ValueError(f"{model.name} uses the dtype policies {policies}; export rebuilds "
                         "mixed-precision models in float32 but cannot undo other policies "
                         "(e.g. quantized layers). Export the float model instead.")
    import kconvnext.layers  # noqa: F401  (registers the custom layers for deserialisation)

    config = _float32_config(keras.saving.serialize_keras_object(model))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(FLOAT32)
    try:
        rebuilt = keras.saving.deserialize_keras_object(config)
    finally:
        keras.config.set_dtype_policy(previous)
    left = mixed_policies(rebuilt)
    if left:
        raise ValueError(f"Rebuilding {model.name} in float32 left layers under {left}; cannot export "
                         "a float32 graph from it.")
    weights = model.get_weights()
    if [w.shape for w in weights] != [tuple(w.shape) for w in rebuilt.weights]:
        raise ValueError(f"Rebuilding {model.name} in float32 changed its weights' shapes; cannot export it.")
    rebuilt.set_weights(weights)
    note = f"trained under {', '.join(policies)}: rebuilt in float32 for export (same weights)"
    return rebuilt, note
