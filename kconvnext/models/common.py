"""Pieces every family shares: the input + normalisation front and the pooling/classifier head."""
import keras

from kconvnext.preprocessing import normalization_layer

POOLINGS = (None, "avg", "max")


DEFAULT_INPUT_SHAPE = (224, 224, 3)


def model_input(input_shape, normalization, input_tensor=None):
    """(model inputs, normalised tensor) for [0, 255] pixels, normalised in-model (see
    kconvnext.preprocessing); 1 channel = grey.

    input_tensor (a Keras tensor) builds the model on it, as keras.applications does: the model's
    inputs are that tensor's source inputs. input_shape None: input_tensor's, else (224, 224, 3).
    """
    if input_tensor is not None:
        if not isinstance(input_tensor, keras.KerasTensor):
            raise ValueError(f"input_tensor must be a Keras tensor (keras.Input(...) or a layer's output), "
                             f"got {type(input_tensor).__name__}.")
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(f"input_shape {tuple(input_shape)} does not match input_tensor's shape {shape}; "
                             "give one of them.")
        input_shape = shape
    input_shape = DEFAULT_INPUT_SHAPE if input_shape is None else tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(
            f"input_shape must be (height, width, channels) with 1 or 3 channels, got {input_shape!r}."
        )
    if input_tensor is None:
        inputs = input_tensor = keras.Input(shape=input_shape, name="images")
    else:
        sources = keras.utils.get_source_inputs(input_tensor)
        inputs = sources[0] if len(sources) == 1 else sources
    norm = normalization_layer(normalization, channels=input_shape[-1])
    return inputs, (norm(input_tensor) if norm is not None else input_tensor)


def classifier_head(x, *, num_classes, include_top, pooling, head_norm=None, dropout=0.0,
                    classifier_activation=None, kernel_initializer="glorot_uniform",
                    name_prefix="head"):
    """include_top: pool -> [norm] -> [dropout] -> Dense(num_classes). Else: features, pooled or not.

    Returns logits by default (classifier_activation=None): losses take from_logits=True and
    export adds the softmax where serving needs probabilities.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    if not include_top and pooling is None:
        return x
    pool = keras.layers.GlobalMaxPooling2D if pooling == "max" else keras.layers.GlobalAveragePooling2D
    x = pool(name=f"{name_prefix}_pool")(x)
    if head_norm is not None:
        x = head_norm(x)
    if not include_top:
        return x
    if not num_classes or int(num_classes) < 1:
        raise ValueError(f"num_classes must be a positive integer when include_top=True, got {num_classes!r}.")
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name_prefix}_dropout")(x)
    return keras.layers.Dense(
        int(num_classes), activation=classifier_activation,
        kernel_initializer=kernel_initializer, name=f"{name_prefix}_fc",
    )(x)


def drop_path_rates(depths, drop_path_rate):
    """Per-block rates rising linearly from 0 to drop_path_rate, as in the ConvNeXt paper."""
    total = sum(depths)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    out, start = [], 0
    for d in depths:
        out.append(rates[start:start + d])
        start += d
    return out
