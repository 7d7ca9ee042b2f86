"""ResNet-18..152 and ResNeXt-50/101, torchvision/timm layout (v1.5: stride on the 3x3 conv)."""
import keras

from kconvnext.layers import BasicBlock, BottleneckBlock
from kconvnext.layers.resnet import batch_norm, conv
from kconvnext.models.common import classifier_head, drop_path_rates, model_input
from kconvnext.models.registry import register

STAGE_FILTERS = (64, 128, 256, 512)

VARIANTS = {
    # name: (family, block, depths, groups, base_width)
    "resnet18": ("resnet", "basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("resnet", "basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("resnet", "bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("resnet", "bottleneck", (3, 4, 23, 3), 1, 64),
    "resnet152": ("resnet", "bottleneck", (3, 8, 36, 3), 1, 64),
    "resnext50_32x4d": ("resnext", "bottleneck", (3, 4, 6, 3), 32, 4),
    "resnext101_32x8d": ("resnext", "bottleneck", (3, 4, 23, 3), 32, 8),
    "resnext101_64x4d": ("resnext", "bottleneck", (3, 4, 23, 3), 64, 4),
}


def build_resnet(block, depths, *, widths=STAGE_FILTERS, groups=1, base_width=64, num_classes=1000,
                 input_shape=None, input_tensor=None, include_top=True, pooling=None, drop_path_rate=0.0,
                 small_input=False, normalization="imagenet", head_dropout=0.0,
                 zero_init_last=True, grouped_conv_implementation=None, classifier_activation=None,
                 name="resnet"):
    """A ResNet / ResNeXt as a plain functional `keras.Model`.

    small_input=True is the CIFAR stem: one 3x3 stride-1 conv and no max-pool, so 32x32 images
    reach the first stage at full resolution. pooling applies when include_top=False, as in
    keras.applications: None (the default) gives the last feature map, "avg"/"max" pooled features.
    widths: the stages' widths as torchvision's `planes` (a basic block's channels, a bottleneck's
    inner width before groups/base_width; the stem has widths[0]); (32, 64, 128, 256) is a
    quarter of ResNet-18's convolution cost, for CPU budgets (recipes/catsdogs_scratch.yaml).
    Initialisation as torchvision: kaiming_normal fan_out convs (layers/resnet.py), BatchNorm 1/0
    (zero_init_last, timm's default, zeroes each block's last BN scale), and torch's nn.Linear
    default for the classifier kernel, U(+-1/sqrt(fan_in)) (the bias starts at zero).
    """
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}.")
    if block == "basic" and (groups != 1 or base_width != 64):
        raise ValueError("BasicBlock supports only groups=1 and base_width=64 (as torchvision).")
    inputs, x = model_input(input_shape, normalization, input_tensor)
    if len(widths) < len(depths):
        raise ValueError(f"widths {tuple(widths)} and depths {tuple(depths)}: one width per stage.")
    for layer in conv(int(widths[0]), 3 if small_input else 7, 1 if small_input else 2, name="conv1"):
        x = layer(x)
    x = keras.layers.ReLU(name="relu")(batch_norm("bn1")(x))
    if not small_input:
        # Zero padding is exact here: the max-pool follows a ReLU, so inputs are >= 0.
        x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    for i, (depth, filters, rates) in enumerate(zip(depths, widths, drop_path_rates(depths, drop_path_rate))):
        for j in range(depth):
            common = dict(
                strides=2 if (i > 0 and j == 0) else 1, drop_path_rate=rates[j],
                zero_init_last=zero_init_last, name=f"layer{i + 1}_{j}",
            )
            if block == "basic":
                x = BasicBlock(filters, **common)(x)
            else:
                x = BottleneckBlock(
                    filters, groups=groups, base_width=base_width,
                    grouped_conv_implementation=grouped_conv_implementation, **common,
                )(x)
    x = resnet_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                    head_dropout=head_dropout, classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def resnet_head(x, *, num_classes, include_top, pooling, head_dropout, classifier_activation):
    """ResNet's classifier: average pool (the feature map when include_top=False and no pooling is
    asked for) -> Dense initialised as torch's nn.Linear default, U(+-1/sqrt(fan_in))."""
    return classifier_head(
        x, num_classes=num_classes, include_top=include_top,
        pooling=pooling or ("avg" if include_top else None), dropout=head_dropout,
        classifier_activation=classifier_activation, name_prefix="head",
        kernel_initializer=keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform"),
    )


for _name, (_family, _block, _depths, _groups, _width) in VARIANTS.items():
    register(_name, _family, build_resnet, reference="He et al. 2016 / Xie et al. 2017 / torchvision",
             block=_block, depths=_depths, groups=_groups, base_width=_width)
