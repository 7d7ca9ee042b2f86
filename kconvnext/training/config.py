"""The training recipe as a typed, validated dataclass.

Recipes are data (YAML files in recipes/), but a typo in a data file must fail loudly before an
hour of training, not silently fall back to a default. So every key is declared here with its type,
and loading checks unknown keys (with close-match suggestions) and types (naming file and key).
"""
import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from typing import Optional

from kconvnext.data.config import AugmentConfig


@dataclass(frozen=True)
class AugmentSettings(AugmentConfig):
    """A recipe's `augment:` block: exactly kconvnext.data.AugmentConfig, every key applied by the pipeline
    (randaugment_magnitude_std included: timm's per-op magnitude noise, see kconvnext/data/randaugment.py)."""

    def pipeline_dict(self):
        """The fields as kconvnext.data.load's `augment` argument."""
        d = dataclasses.asdict(self)
        d["crop_scale"] = tuple(d["crop_scale"])
        return d


@dataclass
class TrainConfig:
    """Every knob of a training run. A recipe file sets some; --set KEY=VALUE overrides any."""
    description: str = ""
    # Data
    image_size: int = 224
    batch_size: int = 32
    validation_fraction: float = 0.1
    # Share of the training images held out to choose the best epoch (raw or EMA weights) on, so the
    # validation/test split is reported once, for the chosen checkpoint, and never selected on.
    # 0: select on the validation split itself (the run then labels its accuracy as optimistic).
    selection_fraction: float = 0.1
    limit: Optional[int] = None  # at most this many images per split (quick runs, tests)
    seed: int = 0
    # Schedule
    epochs: int = 30
    warmup_epochs: float = 2.0
    # Train for this many minutes of this machine instead of `epochs` (kconvnext/training/budget.py).
    budget_minutes: Optional[float] = None
    # Optimizer (AdamW). Effective lr = lr if set, else base_lr * batch_size / base_batch_size
    # (the paper's linear scaling rule: 4e-3 at batch 4096).
    base_lr: float = 4e-3
    base_batch_size: int = 4096
    lr: Optional[float] = None
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    no_weight_decay: list = field(default_factory=lambda: ["bias", "gamma", "beta"])
    layer_decay: Optional[float] = None  # layer-wise lr decay (fine-tuning), e.g. 0.7
    global_clipnorm: Optional[float] = None
    ema: bool = False
    ema_momentum: float = 0.9999
    # Loss
    label_smoothing: float = 0.1
    # Model options
    drop_path_rate: float = 0.1
    drop_path_rates: dict = field(default_factory=dict)  # per-model table, overrides drop_path_rate
    layer_scale_init: float = 1e-6   # ConvNeXt only
    head_init_scale: float = 1.0     # ConvNeXt only
    small_input: bool = False
    # Start from these weights: a preset tag ("imagenet", see `cli.py models`) or a checkpoint file.
    pretrained: Optional[str] = None
    # Transfer learning by linear probe: freeze the pretrained backbone, compute its pooled features
    # once per image (plus `probe_views` augmented views per training image), train only the head.
    linear_probe: bool = False
    probe_views: int = 0
    model: dict = field(default_factory=dict)  # extra create_model kwargs, e.g. depths: [1, 1, 2, 1]
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    # Runtime
    mixed_precision: Optional[str] = None  # null | auto | mixed_bfloat16 | mixed_float16
    strategy: str = "auto"  # auto | default | mirrored | multiworker
    cpu_devices: Optional[int] = None  # logical CPU devices for `mirrored` without GPUs (tests)
    steps_per_execution: int = 1
    # XLA for the train step (keras compile's jit_compile); null: Keras' "auto", which is off for
    # TensorFlow on a CPU. On the 2-core CPU it sped ResNet-18's training up 1.4x at 112 px and
    # slowed ConvNeXt-atto's 7x (depthwise convolutions), so it is a per-recipe choice.
    jit_compile: Optional[bool] = None

    CHOICES = {
        "mixed_precision": (None, "auto", "mixed_bfloat16", "mixed_float16", "float32"),
        "strategy": ("auto", "default", "mirrored", "multiworker"),
    }
    # Keys that must be > 0 when set: `epochs: 0` would "finish" at once without writing a checkpoint.
    POSITIVE = ("image_size", "batch_size", "epochs", "budget_minutes", "base_batch_size", "limit",
                "steps_per_execution")

    def effective_lr(self):
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / self.base_batch_size

    def drop_path_for(self, model_name):
        return float(self.drop_path_rates.get(model_name, self.drop_path_rate))

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["augment"]["crop_scale"] = list(d["augment"]["crop_scale"])
        return d


def _type_name(tp):
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def coerce(value, tp, where):
    """Check/convert one value to the declared type; `where` names file and key in the error."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, args[0], where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `4e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            return tp(value)
    elif tp is dict:
        if isinstance(value, dict):
            return dict(value)
    raise ValueError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}).")


def _build(cls, data, where):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}.{hint} Valid keys: {', '.join(names)}.")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{where}: {key}")
            continue
        kwargs[key] = coerce(value, tp, f"{where}: key {key!r}")
        choices = getattr(cls, "CHOICES", {}).get(key)
        if choices and kwargs[key] not in choices:
            raise ValueError(f"{where}: key {key!r} must be one of {list(choices)}, got {kwargs[key]!r}.")
        if key in getattr(cls, "POSITIVE", ()) and kwargs[key] is not None and not kwargs[key] > 0:
            raise ValueError(f"{where}: key {key!r} must be > 0, got {kwargs[key]!r}.")
    return cls(**kwargs)


def config_from_dict(data, where="recipe"):
    """A TrainConfig from a (possibly partial) mapping; missing keys take the defaults above."""
    return _build(TrainConfig, data or {}, where)


def merge(base, overrides):
    """Deep-merge two plain mappings (overrides win; nested mappings merge key by key)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(items):
    """['augment.mixup_alpha=0', 'lr=1e-3'] -> nested dict, values read as YAML (typed later)."""
    import yaml

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set image_size=64.")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
