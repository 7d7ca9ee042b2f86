"""The residual block of the ConvNeXt paper's roadmap, between a ResNeXt block and a ConvNeXt block.

Liu et al. 2022 (Sec. 2) turn a ResNet bottleneck into the ConvNeXt block one change at a time.
Each change is an argument here, so every intermediate block of kconvnext.roadmap.models is this
one layer with other settings:

- layout: "bottleneck" = 1x1 -> depthwise kxk -> 1x1 (ResNeXt-ify, inverted bottleneck);
  "dwconv_first" = depthwise kxk -> 1x1 -> 1x1 ("moving up the depthwise conv").
- `filters` (residual width) vs `hidden` (width between the 1x1s): hidden < filters is ResNeXt's
  bottleneck, hidden = 4 x filters the inverted bottleneck.
- activation "relu" | "gelu"; fewer_activations keeps only the one after pwconv1 (between the
  two 1x1 layers), dropping ResNet's others, including the one after the residual sum.
- norm "batch" | "layer"; fewer_norms keeps only the one after the depthwise conv.
- strides > 1 or a width change: ResNet's projection shortcut (strided 1x1 conv + norm), and the
  stride sits on the depthwise conv (ResNet v1.5).

Convs use ConvNeXt's init (the block becomes ConvNeXt's at the end of the road), the projection
shortcut ResNet's. Every block starts near identity: with a norm after pwconv2 its gamma starts at zero (ResNet's
zero-init-residual); without one (fewer_norms) ConvNeXt's LayerScale takes over that job.
Convs followed by BatchNorm have no bias (BN's beta replaces it); all others keep theirs, so with
ConvNeXt's settings and an identity shortcut the block has exactly ConvNeXtBlock's weights
(`dwconv`, `norm`, `pwconv1`, `pwconv2`, `layer_scale`) and output.
"""
import keras

from kconvnext.layers.convnext import LAYER_NORM_EPSILON, LayerScale, kernel_init
from kconvnext.layers.drop_path import DropPath
from kconvnext.layers.resnet import build_chain, batch_norm, kaiming_fan_out, padding_for

LAYOUTS = ("bottleneck", "dwconv_first")
NORMS = ("batch", "layer")
ACTIVATIONS = ("relu", "gelu")


def norm_layer(kind, name, zero_init=False):
    """BatchNorm with ResNet's settings, or LayerNorm with ConvNeXt's (over channels, eps 1e-6)."""
    if kind == "batch":
        return batch_norm(name, zero_init=zero_init)
    if kind == "layer":
        return keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, gamma_initializer="zeros" if zero_init else "ones", name=name,
        )
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}.")


def activation_fn(kind):
    """ReLU, or the exact (erf) GELU that torch.nn.GELU() and ConvNeXtBlock use."""
    if kind == "relu":
        return keras.activations.relu
    if kind == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}.")


def _check_choice(arg, value, choices):
    if value not in choices:
        raise ValueError(f"RoadmapBlock {arg} must be one of {choices}, got {value!r}.")


@keras.saving.register_keras_serializable(package="kconvnext")
class RoadmapBlock(keras.layers.Layer):
    """A residual block with every roadmap design choice as an argument (see the module docstring)."""

    def __init__(self, filters, hidden, kernel_size=3, strides=1, layout="bottleneck", activation="relu",
                 fewer_activations=False, norm="batch", fewer_norms=False, drop_path_rate=0.0,
                 layer_scale_init=1e-6, **kwargs):
        super().__init__(**kwargs)
        _check_choice("layout", layout, LAYOUTS)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, NORMS)
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"RoadmapBlock kernel_size must be a positive odd number, got {kernel_size!r}.")
        self.filters = int(filters)
        self.hidden = int(hidden)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.layout = layout
        self.activation = activation
        self.fewer_activations = bool(fewer_activations)
        self.norm_type = norm
        self.fewer_norms = bool(fewer_norms)
        self.drop_path_rate = float(drop_path_rate)
        self.layer_scale_init = float(layer_scale_init) if layer_scale_init else None
        self.act = activation_fn(activation)
        biased = norm != "batch"  # a per-channel bias before BatchNorm is exactly redundant

        pad, padding = padding_for(self.kernel_size, self.strides, "dwconv")
        self.dwconv_pad = pad[0] if pad else None
        self.dwconv = keras.layers.DepthwiseConv2D(
            self.kernel_size, strides=self.strides, padding=padding, use_bias=biased,
            depthwise_initializer=kernel_init(), name="dwconv",
        )
        self.norm = norm_layer(norm, "norm")
        self.pwconv1 = keras.layers.Dense(
            self.hidden, use_bias=biased or self.fewer_norms, kernel_initializer=kernel_init(),
            name="pwconv1",
        )
        self.pwconv1_norm = None if self.fewer_norms else norm_layer(norm, "pwconv1_norm")
        self.pwconv2 = keras.layers.Dense(
            self.filters, use_bias=biased or self.fewer_norms, kernel_initializer=kernel_init(),
            name="pwconv2",
        )
        self.pwconv2_norm = None if self.fewer_norms else norm_layer(norm, "pwconv2_norm", zero_init=True)
        self.layer_scale = (
            LayerScale(self.layer_scale_init, name="layer_scale")
            if self.fewer_norms and self.layer_scale_init else None
        )
        self.drop_path = DropPath(self.drop_path_rate, name="drop_path")
        self.downsample_conv = None
        self.downsample_norm = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.strides != 1 or channels != self.filters:
            self.downsample_conv = keras.layers.Conv2D(
                self.filters, 1, strides=self.strides, use_bias=self.norm_type != "batch",
                kernel_initializer=kaiming_fan_out(), name="downsample_conv",
            )
            self.downsample_norm = norm_layer(self.norm_type, "downsample_norm")
            build_chain([self.downsample_conv, self.downsample_norm], input_shape)
        chain = []
        if self.layout == "bottleneck":
            chain += [self.pwconv1] + ([self.pwconv1_norm] if self.pwconv1_norm else [])
        chain += ([self.dwconv_pad] if self.dwconv_pad else []) + [self.dwconv, self.norm]
        if self.layout == "dwconv_first":
            chain += [self.pwconv1] + ([self.pwconv1_norm] if self.pwconv1_norm else [])
        chain += [self.pwconv2] + ([self.pwconv2_norm] if self.pwconv2_norm else [])
        shape = build_chain(chain, input_shape)
        if self.layer_scale is not None:
            self.layer_scale.build(shape)

    def _norm_act(self, x, norm, training, keep_activation):
        if norm is not None:
            x = norm(x, training=training)
        return self.act(x) if keep_activation else x

    def _dwconv(self, x, training):
        if self.dwconv_pad is not None:
            x = self.dwconv_pad(x)
        return self._norm_act(self.dwconv(x), self.norm, training, not self.fewer_activations)

    def _pwconv1(self, x, training):
        return self._norm_act(self.pwconv1(x), self.pwconv1_norm, training, True)

    def call(self, inputs, training=None):
        if self.layout == "bottleneck":
            x = self._dwconv(self._pwconv1(inputs, training), training)
        else:
            x = self._pwconv1(self._dwconv(inputs, training), training)
        x = self.pwconv2(x)
        if self.pwconv2_norm is not None:
            x = self.pwconv2_norm(x, training=training)
        if self.layer_scale is not None:
            x = self.layer_scale(x)
        x = self.drop_path(x, training=training)
        shortcut = inputs
        if self.downsample_conv is not None:
            shortcut = self.downsample_norm(self.downsample_conv(inputs), training=training)
        x = x + shortcut
        return x if self.fewer_activations else self.act(x)

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else (n - 1) // self.strides + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "hidden": self.hidden,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "layout": self.layout,
            "activation": self.activation,
            "fewer_activations": self.fewer_activations,
            "norm": self.norm_type,
            "fewer_norms": self.fewer_norms,
            "drop_path_rate": self.drop_path_rate,
            "layer_scale_init": self.layer_scale_init,
        }
