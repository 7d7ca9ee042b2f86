"""The ConvNeXt paper's "modernizing a ResNet" roadmap as twelve runnable models.

Liu et al. 2022 ("A ConvNet for the 2020s", Sec. 2, Fig. 2) start from ResNet-50 trained with the
modern recipe and apply one design change at a time until they reach ConvNeXt-T. Each step here
is a registered model, `roadmap_00_resnet50` ... `roadmap_11_convnext_t` (also
`roadmap_step(index_or_name, **kwargs)`), a plain functional `keras.Model` like every other.
Each step keeps everything of the previous one and changes what its line says (widths are per
stage; "residual" is the width of the stream between blocks):

 0 resnet50            our resnet50 itself (build_resnet): 7x7/2 stem + max-pool, torchvision
                       bottlenecks (1x1 -> 3x3 -> 1x1, residual 4x the inner 64..512), depths
                       (3, 4, 6, 3), stride on the 3x3, projection shortcuts (1x1 conv + BN),
                       BN + ReLU after every conv and after each sum.
 1 stage_ratio         depths (3, 3, 9, 3) (build_resnet).
 2 patchify_stem       the stem becomes one 4x4 stride-4 conv + BN (no ReLU, no max-pool), as
                       ConvNeXt's conv + norm stem; blocks unchanged.
 3 resnextify         RoadmapBlock: the 3x3 conv becomes depthwise (groups = channels) and the
                       width grows 64 -> 96: inner (96, 192, 384, 768), residual 4x that; the stem
                       gives 96 channels (the first block projects 96 -> 384, as ResNet's 64 -> 256).
 4 inverted_bottleneck residual (96, 192, 384, 768), inner 4x that: 1x1 expand -> depthwise 3x3
                       (strided) -> 1x1 project; the downsampling blocks' shortcut convs shrink.
 5 move_up_dwconv      depthwise 3x3 (strided) first, then the two 1x1s (expand, project).
 6 kernel_7x7          depthwise 7x7. (kernel_size=5/9/11 on steps 3-10 gives the paper's other
                       kernel sizes: 80.4% at 5x5, saturated at 80.6% from 7x7 on.)
 7 gelu                every ReLU becomes the exact GELU.
 8 fewer_activations   only the GELU between the two 1x1s remains (none after the sum either).
 9 fewer_norms         only the norm after the depthwise conv remains; with no norm left at the
                       block's end, ConvNeXt's layer scale (layer_scale_init) takes over the
                       zero-init-residual role of the last BN's zero gamma.
10 layer_norm          every BN (stem, blocks, shortcuts) becomes LayerNorm.
11 convnext_t          separate downsampling layers: our convnext_t itself (build_convnext): LN +
                       2x2 stride-2 conv between stages instead of strided blocks with projection
                       shortcuts, plus the LN after the global pool.

Steps 0, 1 and 11 *are* build_resnet / build_convnext, so their parameters, layer names and
weights are those of resnet50 / convnext_t (a torchvision or timm checkpoint loads into them).
Choices the paper leaves open are made as above: the patchify stem keeps the norm of the stem
it replaces (and step 10 turns it into ConvNeXt's LN stem); in-block downsampling stays on the
depthwise conv (ResNet v1.5); convs followed by BN have no bias.

Families (they pick the default recipe and the layer-wise lr decay grouping): steps 0-10 keep
ResNet's macro design and layer names (conv1, layer{i}_{j}, head_fc) and are "resnet"; step 11 is
"convnext". The CIFAR-10 recipes of both families are the same file, so on CIFAR-10 `compare`
differs only in the model, as in the paper; elsewhere pass one `--recipe` for all steps.
small_input=True gives steps 0-1 ResNet's CIFAR stem (3x3/1) and steps 2-11 ConvNeXt's (2x2
patchify), so on 32 px images step 2 also quarters the first stage's resolution; the
stem_patch_size option (steps 2-11) overrides the patch size.
"""
import difflib
from dataclasses import dataclass, field

import keras

from kconvnext.layers.resnet import BottleneckBlock, kaiming_fan_out
from kconvnext.models.common import drop_path_rates, model_input
from kconvnext.models.convnext import build_convnext
from kconvnext.models import register
from kconvnext.models.resnet import STAGE_FILTERS, build_resnet, resnet_head
from kconvnext.roadmap.layers import RoadmapBlock, norm_layer

# Where the paper's figures come from. REPORT: the report this project grew from, by line. PAPER: Liu et al. 2022, Fig. 2 and Sec. 2.
REPORT = "report"
PAPER = "paper Fig. 2 / Sec. 2"


@dataclass(frozen=True)
class RoadmapStep:
    index: int
    key: str
    change: str
    design: dict
    family: str = "resnet"
    paper_top1: float = None    # ImageNet-1k top-1 (%), ResNet-50 / Swin-T regime
    paper_gflops: float = None  # multiply-adds at 224 px
    source: dict = field(default_factory=dict)  # {"top1": where from, "gflops": where from}

    @property
    def name(self):
        return f"roadmap_{self.index:02d}_{self.key}"


_BASE = dict(
    depths=(3, 4, 6, 3), stem="resnet", block="torchvision_bottleneck", downsampling="in_block",
    dims=(96, 192, 384, 768), inverted=False, layout="bottleneck", kernel_size=3,
    activation="relu", fewer_activations=False, norm="batch", fewer_norms=False,
)

# (key, change, design changes, family, top-1, GFLOPs, sources)
_CHANGES = [
    ("resnet50", "ResNet-50, modern training recipe", {}, "resnet", 78.8, 4.1,
     {"top1": f"{REPORT} l.62", "gflops": PAPER}),
    ("stage_ratio", "stage ratio (3, 4, 6, 3) -> (3, 3, 9, 3)", {"depths": (3, 3, 9, 3)}, "resnet", 79.4, 4.5,
     {"top1": f"{REPORT} l.93", "gflops": PAPER}),
    ("patchify_stem", "7x7/2 stem + max-pool -> 4x4/4 patchify conv", {"stem": "patchify"}, "resnet", 79.5, 4.4,
     {"top1": f"{REPORT} l.129", "gflops": f"{REPORT} l.129"}),
    ("resnextify", "ResNeXt-ify: depthwise 3x3, width 64 -> 96", {"block": "roadmap"}, "resnet", 80.5, 5.3,
     {"top1": f"{REPORT} l.141", "gflops": PAPER}),
    ("inverted_bottleneck", "inverted bottleneck (96 -> 384 -> 96)", {"inverted": True}, "resnet", 80.6, 4.6,
     {"top1": f"{REPORT} l.149", "gflops": PAPER}),
    ("move_up_dwconv", "depthwise conv moved up (3x3)", {"layout": "dwconv_first"}, "resnet", 79.9, 4.1,
     {"top1": f"{REPORT} l.159", "gflops": PAPER}),
    ("kernel_7x7", "depthwise kernel 3x3 -> 7x7", {"kernel_size": 7}, "resnet", 80.6, 4.2,
     {"top1": f"{REPORT} l.159", "gflops": PAPER}),
    ("gelu", "ReLU -> GELU", {"activation": "gelu"}, "resnet", 80.6, None,
     {"top1": f"{REPORT} l.174 (unchanged)"}),
    ("fewer_activations", "fewer activations (one GELU per block)", {"fewer_activations": True}, "resnet",
     81.3, None, {"top1": f"{REPORT} l.178"}),
    ("fewer_norms", "fewer norms (one per block)", {"fewer_norms": True}, "resnet", 81.4, None,
     {"top1": f"{REPORT} l.180"}),
    ("layer_norm", "BN -> LN", {"norm": "layer"}, "resnet", 81.5, None, {"top1": f"{REPORT} l.182"}),
    ("convnext_t", "separate downsampling layers (= ConvNeXt-T)",
     {"block": "convnext", "downsampling": "separate"}, "convnext", 82.0, 4.5,
     {"top1": f"{REPORT} l.184", "gflops": PAPER}),
]


def _steps():
    steps, design = [], dict(_BASE)
    for index, (key, change, delta, family, top1, gflops, source) in enumerate(_CHANGES):
        design = {**design, **delta}
        steps.append(RoadmapStep(index, key, change, dict(design), family, top1, gflops, source))
    return tuple(steps)


STEPS = _steps()
STEP_NAMES = tuple(s.name for s in STEPS)


def get_step(name_or_index):
    """A RoadmapStep by index (0-11), key ("kernel_7x7") or model name ("roadmap_06_kernel_7x7")."""
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if 0 <= name_or_index < len(STEPS):
            return STEPS[name_or_index]
        raise ValueError(f"Roadmap step index must be 0-{len(STEPS) - 1}, got {name_or_index}.")
    for step in STEPS:
        if name_or_index in (step.key, step.name):
            return step
    valid = [s.name for s in STEPS]
    close = difflib.get_close_matches(str(name_or_index), valid + [s.key for s in STEPS], n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown roadmap step {name_or_index!r}.{hint} Valid: 0-{len(STEPS) - 1} or {', '.join(valid)}.")


def _overridden(step, depths, dims, kernel_size, stem_patch_size):
    """The step's design with the caller's size options, refusing those the step does not have."""
    design = dict(step.design)
    if depths is not None:
        if len(depths) != 4:
            raise ValueError(f"depths must give 4 stages, got {depths!r}.")
        design["depths"] = tuple(int(d) for d in depths)
    if dims is not None:
        if design["block"] == "torchvision_bottleneck":
            raise ValueError(f"dims: {step.name} uses ResNet-50's widths; dims applies to steps 3-11.")
        if len(dims) != 4:
            raise ValueError(f"dims must give 4 stage widths, got {dims!r}.")
        design["dims"] = tuple(int(d) for d in dims)
    if kernel_size is not None:
        if design["block"] != "roadmap":
            raise ValueError(f"kernel_size: {step.name} has no depthwise conv to resize; it applies to steps 3-10.")
        design["kernel_size"] = int(kernel_size)
    if stem_patch_size is not None and design["stem"] != "patchify":
        raise ValueError(f"stem_patch_size: {step.name} has ResNet's stem; it applies to steps 2-11.")
    return design


def build_roadmap(step, *, num_classes=1000, input_shape=None, input_tensor=None, include_top=True, pooling=None,
                  drop_path_rate=0.0, layer_scale_init=1e-6, small_input=False, stem_patch_size=None,
                  normalization="imagenet", head_dropout=0.0, head_init_scale=1.0, classifier_activation=None,
                  depths=None, dims=None, kernel_size=None, name=None):
    """Roadmap step `step` (index, key or name) as a plain functional `keras.Model`.

    depths / dims / kernel_size shrink or vary a step (e.g. tests at depths=(1, 1, 1, 1)); the
    registered models use the paper's sizes. layer_scale_init matters from step 9 on,
    head_init_scale only for step 11, as in the recipes.
    """
    step = get_step(step)
    design = _overridden(step, depths, dims, kernel_size, stem_patch_size)
    name = name or step.name
    common = dict(num_classes=num_classes, input_shape=input_shape, input_tensor=input_tensor, include_top=include_top, pooling=pooling,
                  drop_path_rate=drop_path_rate, small_input=small_input, normalization=normalization,
                  head_dropout=head_dropout, classifier_activation=classifier_activation, name=name)
    if design["stem"] == "resnet":
        return build_resnet("bottleneck", design["depths"], **common)
    if design["downsampling"] == "separate":
        return build_convnext(design["depths"], design["dims"], layer_scale_init=layer_scale_init,
                              stem_patch_size=stem_patch_size, head_init_scale=head_init_scale, **common)
    return _build_in_block_downsampling(design, layer_scale_init=layer_scale_init,
                                        stem_patch_size=stem_patch_size, **common)


def _block_factory(design, layer_scale_init):
    """(stage index, strides, drop path rate, name) -> the step's residual block."""
    if design["block"] == "torchvision_bottleneck":
        return lambda i, strides, rate, name: BottleneckBlock(
            STAGE_FILTERS[i], strides=strides, drop_path_rate=rate, name=name)
    options = {k: design[k] for k in ("kernel_size", "layout", "activation", "fewer_activations", "norm",
                                      "fewer_norms")}

    def make(i, strides, rate, name):
        dim = design["dims"][i]
        filters, hidden = (dim, 4 * dim) if design["inverted"] else (4 * dim, dim)
        return RoadmapBlock(filters, hidden, strides=strides, drop_path_rate=rate,
                            layer_scale_init=layer_scale_init, name=name, **options)

    return make


def _build_in_block_downsampling(design, *, num_classes, input_shape, input_tensor, include_top, pooling, drop_path_rate,
                                 layer_scale_init, small_input, stem_patch_size, normalization,
                                 head_dropout, classifier_activation, name):
    """Steps 2-10: patchify stem, then ResNet's stages (downsampling inside each stage's first block).

    Layer names are ResNet's (conv1*, layer{i}_{j}, head_*), which the layer-wise lr decay groups;
    the head is initialised as build_resnet's (torch's nn.Linear default).
    """
    patch = stem_patch_size or (2 if small_input else 4)
    width = STAGE_FILTERS[0] if design["block"] == "torchvision_bottleneck" else design["dims"][0]
    inputs, x = model_input(input_shape, normalization, input_tensor)
    x = keras.layers.Conv2D(width, patch, strides=patch, use_bias=design["norm"] != "batch",
                            kernel_initializer=kaiming_fan_out(), name="conv1")(x)
    x = norm_layer(design["norm"], "conv1_norm")(x)
    block = _block_factory(design, layer_scale_init)
    depths = design["depths"]
    for i, rates in enumerate(drop_path_rates(depths, drop_path_rate)):
        for j in range(depths[i]):
            x = block(i, 2 if (i > 0 and j == 0) else 1, rates[j], f"layer{i + 1}_{j}")(x)
    x = resnet_head(x, num_classes=num_classes, include_top=include_top, pooling=pooling,
                    head_dropout=head_dropout, classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def roadmap_step(name_or_index, **kwargs):
    """Build roadmap step `name_or_index` (0-11, a key such as "gelu", or its model name)."""
    return build_roadmap(name_or_index, **kwargs)


# Registered as a user's own model would be (kconvnext.models.register): the core does not know the roadmap.
for _step in STEPS:
    register(_step.name, _step.family, build_roadmap, reference="Liu et al. 2022, Sec. 2 (roadmap)",
             step=_step.index)
