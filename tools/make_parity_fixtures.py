"""Make the timm parity fixtures in tests/fixtures/parity/ (needs torch + timm; the tests do not).

Small random-weight ConvNeXt / ResNet / ResNeXt configurations are built with timm, every
parameter and BatchNorm statistic randomised (layer-scale gammas and LayerNorm affines far from
their init, so a wrong transpose or a dropped gamma shows), run in eval mode in float64 on fixed
random inputs, and saved as:
  <name>.safetensors | <name>.pth   the state dict (timm keys, or the official ConvNeXt layout)
  <name>.npz                        `input` (N, H, W, C) and reference `logits`
  manifest.json                     how to build the matching kconvnext model for each
Every weight is rounded to float16-representable values before the reference run, so the larger
ResNet files are stored as float16 with no loss (keeps the committed fixtures < 3 MB).

Setup (a separate venv keeps the main one torch-free):
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install torch==2.13.0 numpy safetensors pyyaml pillow   # CPU build of torch
  .venv-ref/bin/pip install --no-deps timm
  .venv-ref/bin/python tools/make_parity_fixtures.py [--out tests/fixtures/parity]
timm imports torchvision in places these models never use; a stub stands in for it here.
`--real DIR` also writes full-size fixtures (timm convnext_atto and resnext50_32x4d at 224 px,
1000 classes) for a one-off check; they are far too big to commit.
"""
import argparse
import importlib.abc
import importlib.machinery
import json
import re
import sys
import types
from argparse import Namespace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240611


def _stub_torchvision():
    """timm imports a few torchvision names at module level (FrozenBatchNorm2d, transforms) that
    ConvNeXt and ResNet never call; stand-ins that fail loudly if ever used are enough."""

    class _Meta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return f"{cls.__name__}.{name}"

    def _unusable(self, *args, **kwargs):
        raise RuntimeError("torchvision is stubbed out in make_parity_fixtures.py")

    class _Module(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            value = _Meta(name, (), {"__init__": _unusable})
            setattr(self, name, value)
            return value

    class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            if fullname == "torchvision" or fullname.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            module = _Module(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module):
            pass

    try:
        import torchvision  # noqa: F401
    except ImportError:
        sys.meta_path.insert(0, _Finder())


_stub_torchvision()
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from timm.models.convnext import ConvNeXt  # noqa: E402
from timm.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402


def randomize(model, gen):
    """Every parameter and BN statistic random, fp16-representable, activations kept O(1)."""

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * std + mean

    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "gamma":  # layer scale: far from 1e-6, some negative
                p.copy_(normal(p.shape, 0.5))
            elif p.ndim == 1 and leaf == "weight":  # LayerNorm / BN scale
                p.copy_(normal(p.shape, 0.2, 1.0))
            elif p.ndim == 1:  # biases
                p.copy_(normal(p.shape, 0.1))
            else:  # conv / linear: He-style fan-in scaling
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(normal(p.shape, (2.0 / fan_in) ** 0.5))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(normal(b.shape, 0.2))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5)
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().to(t.dtype))


def reference(model, images):
    """Logits of the float64 model on NHWC images."""
    model = model.double().eval()
    with torch.no_grad():
        out = model(torch.from_numpy(images.astype(np.float64)).permute(0, 3, 1, 2))
    return out.numpy()


def state_dict(model, dtype):
    """numpy state dict; float tensors stored as `dtype` (exact: the values are fp16-representable)."""
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach()
        out[key] = value.numpy() if not value.is_floating_point() else value.float().numpy().astype(dtype)
    return out


_TIMM_TO_OFFICIAL = [
    (r"^stem\.", "downsample_layers.0."),
    (r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.", r"stages.\1.\2.dwconv."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc(\d)\.", r"stages.\1.\2.pwconv\3."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),  # norm, gamma
    (r"^head\.norm\.", "norm."),
    (r"^head\.fc\.", "head."),
]


def timm_to_official(sd):
    """Rename timm ConvNeXt keys to the official facebookresearch/ConvNeXt layout."""
    out = {}
    for key, value in sd.items():
        for pattern, repl in _TIMM_TO_OFFICIAL:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            raise KeyError(f"no official ConvNeXt name for timm key {key!r}")
    return out


def images(gen, n, size):
    x = torch.randn((n, size, size, 3), generator=gen, dtype=torch.float64)
    return x.half().float().numpy()  # fp16-representable: exact in the fp16 npz


def short_resnet(**kwargs):
    """A timm ResNet with fewer than 4 stages (timm's forward names layer1..layer4 explicitly)."""
    model = ResNet(**kwargs)
    for i in range(len(kwargs["layers"]) + 1, 5):
        setattr(model, f"layer{i}", torch.nn.Identity())
    return model


def fixtures():
    convnext = dict(family="convnext")
    return [
        # name, torch model factory, kconvnext build kwargs, input size, weights format, stored dtype
        ("convnext_timm", lambda: ConvNeXt(depths=(1, 1, 2, 1), dims=(16, 32, 48, 64), num_classes=7),
         dict(convnext, depths=[1, 1, 2, 1], dims=[16, 32, 48, 64], num_classes=7), 64, "timm", np.float32),
        ("convnext_timm_conv_mlp",
         lambda: ConvNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 32, 64), num_classes=5, conv_mlp=True),
         dict(convnext, depths=[1, 1, 2, 1], dims=[8, 16, 32, 64], num_classes=5), 64, "timm", np.float16),
        ("convnext_official", lambda: ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=4),
         dict(convnext, depths=[1, 1, 1, 1], dims=[8, 16, 24, 32], num_classes=4), 64, "official", np.float32),
        ("resnet_basic", lambda: short_resnet(block=BasicBlock, layers=[1, 1], channels=(64, 128), num_classes=6),
         dict(family="resnet", block="basic", depths=[1, 1], num_classes=6), 48, "timm", np.float16),
        ("resnet_bottleneck", lambda: short_resnet(block=Bottleneck, layers=[2], channels=(64,), num_classes=3),
         dict(family="resnet", block="bottleneck", depths=[2], num_classes=3), 32, "timm", np.float16),
        ("resnext_32x4d",
         lambda: short_resnet(block=Bottleneck, layers=[1, 1], channels=(64, 128), cardinality=32, base_width=4,
                        num_classes=5),
         dict(family="resnet", block="bottleneck", depths=[1, 1], groups=32, base_width=4, num_classes=5),
         48, "timm", np.float16),
    ]


def real_fixtures():
    import timm

    return [
        ("real_convnext_atto", lambda: timm.create_model("convnext_atto", pretrained=False),
         dict(family="convnext", name="convnext_atto"), 224, "timm", np.float32),
        ("real_resnext50_32x4d", lambda: timm.create_model("resnext50_32x4d", pretrained=False),
         dict(family="resnet", name="resnext50_32x4d"), 224, "timm", np.float32),
    ]


def write(out, specs, gen):
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, factory, build, size, layout, dtype in specs:
        model = factory()
        randomize(model, gen)
        x = images(gen, 2, size)
        logits = reference(model, x)
        sd = state_dict(model, dtype)
        if layout == "official":
            weights = f"{name}.pth"
            # As the official releases: {"model": state_dict}, plus training leftovers to skip.
            torch.save({"model": {k: torch.from_numpy(v) for k, v in timm_to_official(sd).items()},
                        "epoch": 299, "args": Namespace(lr=4e-3, model="convnext_tiny")}, out / weights)
        else:
            weights = f"{name}.safetensors"
            save_file(sd, str(out / weights))
        np.savez(out / f"{name}.npz", input=x.astype(np.float16), logits=logits.astype(np.float32))
        manifest[name] = dict(build=build, weights=weights, input_shape=[size, size, 3],
                              source="convnext_official" if layout == "official" else "auto")
        print(f"{name}: {sum(v.size for v in sd.values()):,} values, logits std {logits.std():.3f}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


def write_reader_fixture(out):
    """A tiny .pth exercising the torch-free reader: dtypes, strided views, shared storage."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    sd = {
        "f32": base,
        "transposed": base.t(),  # non-contiguous strides
        "offset_view": base[1:3, 2:5],  # storage offset into base's (shared) storage
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f64": base.double(),
        "i64": torch.arange(5),
        "u8": torch.arange(5, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
    }
    torch.save({"state_dict": sd, "meta": {"note": "reader fixture"}}, out / "reader_dtypes.pth")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "parity")
    parser.add_argument("--real", type=Path, default=None, help="also write full-size fixtures here")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    write(args.out, fixtures(), gen)
    write_reader_fixture(args.out)
    if args.real:
        write(args.real, real_fixtures(), gen)


if __name__ == "__main__":
    main()
