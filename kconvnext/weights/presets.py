"""Named pretrained weights (`weights="imagenet"`): the table in presets.yaml, plus user mirrors.

The table is data: one row per (model, tag) with its URL, integrity hash, checkpoint layout and
published accuracy. `register_preset` adds or replaces a row at run time, so an organisation can
point a tag at its own artifact store (an https:// or file:// URL) without editing the package.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import yaml

from kconvnext.preprocessing import EvalTransform
from kconvnext.weights.converters import normalize_source

TABLE_FILE = Path(__file__).with_name("presets.yaml")
# torch.hub's rule: `name-<hex prefix of the SHA-256>.ext`.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


@dataclass(frozen=True)
class Preset:
    model: str
    tag: str
    url: str
    source: str  # checkpoint layout, see kconvnext.weights.converters.SOURCES
    sha256: Optional[str] = None
    top1: Optional[float] = None
    size_mb: Optional[float] = None
    license: Optional[str] = None
    note: str = ""
    num_classes: int = 1000
    classes: Optional[str] = "imagenet"  # class names of the head: "imagenet" or None
    transform: EvalTransform = EvalTransform()  # what `top1` was measured with (presets.yaml)
    extra: dict = field(default_factory=dict)

    @property
    def filename(self):
        name = os.path.basename(urlparse(self.url).path)
        if not name:
            raise ValueError(f"preset {self.model}/{self.tag}: URL {self.url!r} does not end in a file name.")
        return name

    @property
    def hash_prefix(self):
        """The hash prefix in the file name (torch.hub / torchvision / timm release files), or None."""
        match = _HASH_IN_NAME.search(self.filename)
        return match.group(1) if match else None

    def describe(self):
        acc = f"{self.top1:.1f}% ImageNet top-1" if self.top1 is not None else "no published top-1"
        return f"{self.model} weights={self.tag!r}: {acc}, {self.license or 'licence unknown'}" + (
            f" ({self.note})" if self.note else "")


def _load_table():
    """The shipped rows, each with its eval transform checked (a row without one is an error)."""
    raw = yaml.safe_load(TABLE_FILE.read_text())
    defaults = raw.get("defaults", {})
    named = {name: EvalTransform.from_dict(row, where=f"{TABLE_FILE} transforms.{name}")
             for name, row in raw["transforms"].items()}
    family = {fam: named[name] for fam, name in raw["family_transform"].items()}
    table = {}
    for model, tags in raw["presets"].items():
        for tag, row in tags.items():
            if "transform" not in row:
                raise ValueError(f"{TABLE_FILE}: preset {model}/{tag} has no eval transform.")
            transform = EvalTransform.from_dict(row["transform"], where=f"{TABLE_FILE} {model}/{tag}")
            table[(model, tag)] = Preset(model=model, tag=tag, **{**defaults, **row, "transform": transform})
    return table, family


_TABLE, _FAMILY_TRANSFORM = _load_table()


def register_preset(model_name, tag, url, sha256=None, *, source=None, top1=None, size_mb=None,
                    license=None, note="", num_classes=1000, classes="imagenet", transform=None):
    """Add (or replace) `weights=tag` for `model_name`, e.g. a mirror in an internal store:

        register_preset("convnext_t", "imagenet", "https://artifacts.example/convnext_tiny_1k_224_ema.pth",
                        sha256="...")

    source: the checkpoint layout (default: that of the row it replaces, else detected on load).
    transform: the eval transform (an EvalTransform or its dict; default: that of the row it
    replaces, else the family's usual one: timm's bicubic 0.875 for ConvNeXt, torchvision's V1 for ResNets).
    Returns the Preset.
    """
    from kconvnext.models import get_spec

    spec = get_spec(model_name)  # an unknown model name is an error here, not at download time
    previous = _TABLE.get((model_name, tag))
    if source is None:
        source = previous.source if previous else "auto"
    source = normalize_source(source)
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha256)):
        raise ValueError(f"register_preset: sha256 must be 64 hex digits, got {sha256!r}.")
    if transform is None:
        transform = previous.transform if previous else _FAMILY_TRANSFORM[spec.family]
    elif not isinstance(transform, EvalTransform):
        transform = EvalTransform.from_dict(dict(transform), where=f"register_preset({model_name!r}, {tag!r})")
    preset = Preset(model=model_name, tag=tag, url=str(url), source=source,
                    sha256=sha256.lower() if sha256 else None, top1=top1, size_mb=size_mb,
                    license=license, note=note, num_classes=int(num_classes), classes=classes,
                    transform=transform)
    preset.filename  # noqa: B018  (validates the URL)
    _TABLE[(model_name, tag)] = preset
    return preset


def unregister_preset(model_name, tag):
    """Remove a preset (tests; an organisation withdrawing a mirror). Shipped rows come back on restart."""
    _TABLE.pop((model_name, tag), None)


def preset_tags(model_name):
    return [tag for (model, tag) in _TABLE if model == model_name]


def get_preset(model_name, tag):
    preset = _TABLE.get((model_name, tag))
    if preset is None:
        tags = preset_tags(model_name)
        have = f"its tags: {', '.join(repr(t) for t in tags)}" if tags else "it has no published weights"
        raise ValueError(
            f"weights={tag!r}: {model_name} has no preset of that name ({have}). Pass a checkpoint "
            "file path instead, or add a tag with kconvnext.weights.register_preset."
        )
    return preset


def preprocessing_for(model_name, weights="imagenet"):
    """The EvalTransform preset `weights` of `model_name` was published with, e.g.

        t = kconvnext.preprocessing_for("convnext_t", "imagenet")  # bicubic, 256 -> 224
        batch = np.stack([t.load(p) for p in paths])                # pixels in [0, 255]
        model.predict(batch)                                        # the model normalises

    `t.at_size(288)` keeps the crop fraction at another size. For a checkpoint file (weights=PATH,
    whose publisher's transform kconvnext cannot know) it is the family's usual one.
    """
    from kconvnext.models import get_spec

    spec = get_spec(model_name)
    if not is_preset_name(weights):
        return _FAMILY_TRANSFORM[spec.family]
    return get_preset(spec.name, str(weights)).transform


def is_preset_name(weights):
    """A weights argument names a preset when it is a plain word that names no file: a folder
    `imagenet/` in the working directory does not turn weights="imagenet" into a path."""
    text = str(weights)
    return not os.path.isfile(text) and re.fullmatch(r"[A-Za-z0-9_\-]+", text) is not None


def list_presets(model_name=None):
    return [p for (model, _), p in _TABLE.items() if model_name is None or model == model_name]
