"""ConvNeXt atto..XL. Depths and widths: the paper for T/S/B/L/XL, timm for the small ones."""
import keras

from kconvnext.layers import ConvNeXtBlock, ConvNeXtDownsample, ConvNeXtStem
from kconvnext.layers.convnext import LAYER_NORM_EPSILON, kernel_init
from kconvnext.models.common import classifier_head, drop_path_rates, model_input
from kconvnext.models.registry import register, register_alias

VARIANTS = {
    "convnext_atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "convnext_femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "convnext_pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "convnext_nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "convnext_t": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_s": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_b": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_l": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "convnext_xl": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
TIMM_NAMES = {"convnext_tiny": "convnext_t", "convnext_small": "convnext_s", "convnext_base": "convnext_b",
              "convnext_large": "convnext_l", "convnext_xlarge": "convnext_xl"}


def build_convnext(depths, dims, *, num_classes=1000, input_shape=None, input_tensor=None, include_top=True,
                   pooling=None, drop_path_rate=0.0, layer_scale_init=1e-6, small_input=False,
                   stem_patch_size=None, normalization="imagenet", head_dropout=0.0,
                   head_init_scale=1.0, classifier_activation=None, name="convnext"):
    """A ConvNeXt as a plain functional `keras.Model`.

    small_input=True uses a 2x2 patchify stem (stem_patch_size overrides), so 32x32 CIFAR images
    keep 16x16 maps in the first stage instead of 8x8.
    pooling applies when include_top=False, as in keras.applications: None (the default) gives the
    last feature map (4-D), "avg" the pooled, LayerNorm'ed features the classifier would see.
    """
    if len(depths) != len(dims):
        raise ValueError(f"depths {depths} and dims {dims} must have the same length.")
    patch = stem_patch_size or (2 if small_input else 4)
    inputs, x = model_input(input_shape, normalization, input_tensor)
    x = ConvNeXtStem(dims[0], patch_size=patch, name="stem")(x)
    for i, (depth, dim, rates) in enumerate(zip(depths, dims, drop_path_rates(depths, drop_path_rate))):
        if i > 0:
            x = ConvNeXtDownsample(dim, name=f"stages_{i}_downsample")(x)
        for j in range(depth):
            x = ConvNeXtBlock(
                dim, drop_path_rate=rates[j], layer_scale_init=layer_scale_init,
                name=f"stages_{i}_blocks_{j}",
            )(x)
    x = classifier_head(
        x, num_classes=num_classes, include_top=include_top, pooling=pooling or ("avg" if include_top else None),
        head_norm=keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="head_norm"),
        dropout=head_dropout, classifier_activation=classifier_activation,
        kernel_initializer=kernel_init(0.02 * head_init_scale),
    )
    return keras.Model(inputs, x, name=name)


for _name, (_depths, _dims) in VARIANTS.items():
    register(_name, "convnext", build_convnext, reference="Liu et al. 2022 / timm",
             depths=_depths, dims=_dims)
for _alias, _name in TIMM_NAMES.items():
    register_alias(_alias, _name)
