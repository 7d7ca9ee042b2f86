"""ResNet / ResNeXt residual blocks (He et al. 2016; Xie et al. 2017), torchvision-compatible.

Stride sits on the 3x3 conv ("ResNet v1.5", as torchvision and timm). Padding is symmetric, as in
PyTorch: Keras' 'same' pads stride-2 convs asymmetrically, which would shift features by a pixel
against imported weights, so strided convs get an explicit ZeroPadding2D; stride-1 convs use
'same', which is already symmetric and saves a padded copy of the tensor. BatchNorm uses PyTorch's eps 1e-5 / momentum 0.1.
Sublayer names follow torchvision (`conv1`, `bn1`, ..., `downsample_conv`, `downsample_bn`).
"""
import keras

from kconvnext.layers.drop_path import DropPath
from kconvnext.layers.grouped_conv import GroupedConv2D

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras' momentum is 1 - PyTorch's.


def kaiming_fan_out():
    """torchvision's init for every ResNet conv, shortcut included: kaiming_normal_(mode="fan_out",
    nonlinearity="relu") = N(0, 2 / (out_channels * kh * kw)), not truncated (Keras' he_normal is
    fan_in and truncated)."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def batch_norm(name, zero_init=False):
    return keras.layers.BatchNormalization(
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
    )


def padding_for(kernel_size, strides, name):
    """(explicit pad layers, conv padding) giving PyTorch's symmetric padding of kernel_size // 2."""
    if kernel_size > 1 and strides > 1:
        return [keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")], "valid"
    return [], "same"


def conv(filters, kernel_size, strides=1, name=None):
    """Bias-free conv with PyTorch's symmetric padding of kernel_size // 2."""
    pad, padding = padding_for(kernel_size, strides, name)
    return pad + [
        keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=False,
            kernel_initializer=kaiming_fan_out(), name=name,
        )
    ]


def _apply(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def build_chain(layers, shape):
    """Build layers in sequence from an input shape; returns the output shape.

    Blocks define compute_output_shape, so Keras never traces their call symbolically and
    sublayers must be built here for weights to exist before the first real call.
    """
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


class _ResidualBlock(keras.layers.Layer):
    """Shared shortcut logic: a 1x1 strided conv + BN when the shape changes, identity otherwise."""

    expansion = 1

    def __init__(self, filters, strides=1, drop_path_rate=0.0, zero_init_last=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.drop_path_rate = float(drop_path_rate)
        self.zero_init_last = bool(zero_init_last)
        self.drop_path = DropPath(self.drop_path_rate, name="drop_path")
        self.relu = keras.layers.ReLU(name="relu")
        self.downsample_conv = None
        self.downsample_bn = None

    @property
    def out_channels(self):
        return self.filters * self.expansion

    def _build_shortcut(self, input_shape):
        if self.strides != 1 or input_shape[-1] != self.out_channels:
            self.downsample_conv = keras.layers.Conv2D(
                self.out_channels, 1, strides=self.strides, use_bias=False,
                kernel_initializer=kaiming_fan_out(), name="downsample_conv",
            )
            self.downsample_bn = batch_norm("downsample_bn")
            build_chain([self.downsample_conv, self.downsample_bn], input_shape)

    def _shortcut(self, inputs, training):
        if self.downsample_conv is None:
            return inputs
        return self.downsample_bn(self.downsample_conv(inputs), training=training)

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else (n - 1) // self.strides + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.out_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "drop_path_rate": self.drop_path_rate,
            "zero_init_last": self.zero_init_last,
        }


@keras.saving.register_keras_serializable(package="kconvnext")
class BasicBlock(_ResidualBlock):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.conv1 = conv(self.filters, 3, self.strides, name="conv1")
        self.bn1 = batch_norm("bn1")
        self.conv2 = conv(self.filters, 3, name="conv2")
        self.bn2 = batch_norm("bn2", zero_init=self.zero_init_last)

    def build(self, input_shape):
        self._build_shortcut(input_shape)
        build_chain([*self.conv1, self.bn1, *self.conv2, self.bn2], input_shape)

    def call(self, inputs, training=None):
        x = self.relu(self.bn1(_apply(self.conv1, inputs), training=training))
        x = self.bn2(_apply(self.conv2, x), training=training)
        x = self.drop_path(x, training=training)
        return self.relu(x + self._shortcut(inputs, training))


@keras.saving.register_keras_serializable(package="kconvnext")
class BottleneckBlock(_ResidualBlock):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand x4 (ResNet-50+, ResNeXt).

    Inner width follows torchvision: floor(filters * base_width / 64) * groups, so
    ResNeXt-50 32x4d has 128 channels in its first stage's grouped conv.
    """

    expansion = 4

    def __init__(self, filters, strides=1, groups=1, base_width=64, grouped_conv_implementation=None,
                 **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.groups = int(groups)
        self.base_width = int(base_width)
        self.grouped_conv_implementation = grouped_conv_implementation
        width = int(self.filters * (self.base_width / 64.0)) * self.groups
        self.width = width
        self.conv1 = conv(width, 1, name="conv1")
        self.bn1 = batch_norm("bn1")
        pad, padding = padding_for(3, self.strides, "conv2")
        self.conv2 = pad + [GroupedConv2D(
            width, 3, strides=self.strides, groups=self.groups, padding=padding,
            implementation=grouped_conv_implementation, kernel_initializer=kaiming_fan_out(), name="conv2",
        )]
        self.bn2 = batch_norm("bn2")
        self.conv3 = conv(self.out_channels, 1, name="conv3")
        self.bn3 = batch_norm("bn3", zero_init=self.zero_init_last)

    def build(self, input_shape):
        self._build_shortcut(input_shape)
        build_chain(
            [*self.conv1, self.bn1, *self.conv2, self.bn2, *self.conv3, self.bn3],
            input_shape,
        )

    def call(self, inputs, training=None):
        x = self.relu(self.bn1(_apply(self.conv1, inputs), training=training))
        x = self.relu(self.bn2(_apply(self.conv2, x), training=training))
        x = self.bn3(_apply(self.conv3, x), training=training)
        x = self.drop_path(x, training=training)
        return self.relu(x + self._shortcut(inputs, training))

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "base_width": self.base_width,
            "grouped_conv_implementation": self.grouped_conv_implementation,
        }
