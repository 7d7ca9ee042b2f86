"""ConvNeXt building blocks (Liu et al., 2022, "A ConvNet for the 2020s").

Channels-last throughout. The 7x7 depthwise conv is `DepthwiseConv2D`: on TF CPU it is
~100x faster than `Conv2D(groups=C)` and converts to TFLite's builtin DEPTHWISE_CONV_2D.
Sublayer names mirror the official checkpoint (`dwconv`, `norm`, `pwconv1`, `pwconv2`,
`gamma`) so weight import is a table, not guesswork.
"""
import keras
from keras import ops

from kconvnext.layers.drop_path import DropPath

LAYER_NORM_EPSILON = 1e-6


def kernel_init(stddev=0.02):
    """N(0, 0.02): the official ConvNeXt / timm init for every conv and linear kernel.

    timm's `trunc_normal_(std=.02)` cuts at +-2 *absolute* (100 std), so it is a plain normal in
    effect; Keras' TruncatedNormal cuts at 2 std (+-0.04), which would shrink the std to ~0.0176.
    """
    return keras.initializers.RandomNormal(stddev=stddev)


def _layer_norm(name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


@keras.saving.register_keras_serializable(package="kconvnext")
class LayerScale(keras.layers.Layer):
    """Per-channel learnable scale (`gamma`), initialised small so each block starts near identity."""

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
        )

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="kconvnext")
class ConvNeXtStem(keras.layers.Layer):
    """Patchify stem: non-overlapping `patch_size` x `patch_size` conv, then LayerNorm."""

    def __init__(self, filters, patch_size=4, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.patch_size = int(patch_size)
        self.conv = keras.layers.Conv2D(filters, patch_size, strides=patch_size, kernel_initializer=kernel_init(), name="conv")
        self.norm = _layer_norm("norm")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.norm(self.conv(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="kconvnext")
class ConvNeXtDownsample(keras.layers.Layer):
    """Between stages: LayerNorm, then a 2x2 stride-2 conv that doubles (usually) the width."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.norm = _layer_norm("norm")
        self.conv = keras.layers.Conv2D(filters, 2, strides=2, kernel_initializer=kernel_init(), name="conv")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.conv.build(input_shape)

    def call(self, inputs):
        return self.conv(self.norm(inputs))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="kconvnext")
class ConvNeXtBlock(keras.layers.Layer):
    """dwconv 7x7 -> LayerNorm -> Dense 4C -> GELU -> Dense C -> layer scale -> drop path, + input.

    `layer_scale_init=None` (or 0) removes the gamma entirely, matching checkpoints trained without it.
    """

    def __init__(self, filters, drop_path_rate=0.0, layer_scale_init=1e-6, mlp_ratio=4,
                 kernel_size=7, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.drop_path_rate = float(drop_path_rate)
        self.layer_scale_init = float(layer_scale_init) if layer_scale_init else None
        self.mlp_ratio = int(mlp_ratio)
        self.kernel_size = int(kernel_size)
        self.dwconv = keras.layers.DepthwiseConv2D(kernel_size, padding="same", depthwise_initializer=kernel_init(), name="dwconv")
        self.norm = _layer_norm("norm")
        self.pwconv1 = keras.layers.Dense(self.mlp_ratio * self.filters, kernel_initializer=kernel_init(), name="pwconv1")
        self.pwconv2 = keras.layers.Dense(self.filters, kernel_initializer=kernel_init(), name="pwconv2")
        self.layer_scale = (
            LayerScale(self.layer_scale_init, name="layer_scale") if self.layer_scale_init else None
        )
        self.drop_path = DropPath(self.drop_path_rate, name="drop_path")

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"ConvNeXtBlock '{self.name}' has {self.filters} filters but got an input with "
                f"{input_shape[-1]} channels; a block cannot change the width (use ConvNeXtDownsample)."
            )
        self.dwconv.build(input_shape)
        self.norm.build(input_shape)
        self.pwconv1.build(input_shape)
        hidden = tuple(input_shape[:-1]) + (self.mlp_ratio * self.filters,)
        self.pwconv2.build(hidden)
        if self.layer_scale is not None:
            self.layer_scale.build(input_shape)

    def call(self, inputs, training=None):
        x = self.dwconv(inputs)
        x = self.norm(x)
        x = self.pwconv1(x)
        # The exact (erf) GELU, as torch.nn.GELU() in the reference models.
        x = keras.activations.gelu(x, approximate=False)
        x = self.pwconv2(x)
        if self.layer_scale is not None:
            x = self.layer_scale(x)
        return inputs + self.drop_path(x, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "drop_path_rate": self.drop_path_rate,
            "layer_scale_init": self.layer_scale_init,
            "mlp_ratio": self.mlp_ratio,
            "kernel_size": self.kernel_size,
        }
