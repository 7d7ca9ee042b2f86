"""Grouped convolution for ResNeXt, with a choice of how it is computed.

The kernel is stored once, in Keras' grouped layout (kh, kw, in/groups, out), so every
implementation reads the same weights and `.keras` files do not depend on the choice:
- "native": one `ops.conv` with a grouped kernel (what `Conv2D(groups=g)` does);
- "split": one dense conv per group, then concat. TF CPU has no fast grouped-conv kernel, and
  TFLite has no builtin grouped CONV_2D, so splitting is both faster there and convertible.
benchmarks/grouped_conv.py measures the two; DEFAULT_IMPLEMENTATION records the winner.
"""
import keras
from keras import ops

IMPLEMENTATIONS = ("native", "split")
DEFAULT_IMPLEMENTATION = "split"


@keras.saving.register_keras_serializable(package="kconvnext")
class GroupedConv2D(keras.layers.Layer):
    """`Conv2D(filters, kernel_size, strides, groups, padding)` without bias."""

    def __init__(self, filters, kernel_size, strides=1, groups=1, implementation=None, padding="valid",
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        implementation = implementation or DEFAULT_IMPLEMENTATION
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"GroupedConv2D implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}."
            )
        if filters % groups:
            raise ValueError(f"GroupedConv2D: filters={filters} is not divisible by groups={groups}.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.groups = int(groups)
        self.implementation = implementation
        if padding not in ("valid", "same"):
            raise ValueError(f"GroupedConv2D padding must be 'valid' or 'same', got {padding!r}.")
        self.padding = padding

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"GroupedConv2D '{self.name}': {channels} input channels are not divisible by "
                f"groups={self.groups}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs):
        kernel = ops.cast(self.kernel, inputs.dtype)
        if self.groups == 1 or self.implementation == "native":
            return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding)
        xs = ops.split(inputs, self.groups, axis=-1)
        ks = ops.split(kernel, self.groups, axis=-1)
        ys = [ops.conv(x, k, strides=self.strides, padding=self.padding) for x, k in zip(xs, ks)]
        return ops.concatenate(ys, axis=-1)

    def compute_output_shape(self, input_shape):
        def out(n):
            if n is None:
                return None
            if self.padding == "same":
                return (n - 1) // self.strides + 1
            return (n - self.kernel_size) // self.strides + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "groups": self.groups,
            "implementation": self.implementation,
            "padding": self.padding,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
