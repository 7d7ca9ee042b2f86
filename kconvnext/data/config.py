"""The data contract's two types: what the caller asks for (AugmentConfig) and gets (DataBundle).

See docs/CONTRIBUTING_NOTES.md; the trainer, the benchmark and the tests rely on these names.
"""
import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation knobs of the ConvNeXt recipe; every one can be switched off.

    RandAugment is timm's "rand-m{magnitude}-n{num_ops}-mstd{magnitude_std}-inc1" (the recipe's
    rand-m9-mstd0.5: magnitude 9 on timm's 0..10 scale, N(0, 0.5) noise on it per op; see
    randaugment.py). Batch mixing is timm's Mixup(mode='batch') (mixing.py): lambda ~ Beta(alpha,
    alpha), one per batch; mixup_alpha / cutmix_alpha of 0 switch that mix off; mix_prob is the chance
    that a batch is mixed at all and mix_switch_prob the chance that a mixed batch uses CutMix rather
    than MixUp. random_erasing is the per-image probability of timm's pixel-noise random erasing.
    eval_crop_ratio: validation resizes the shorter side to image_size / ratio, then center-crops.
    """

    random_resized_crop: bool = True
    crop_scale: tuple = (0.08, 1.0)
    hflip: bool = True
    randaugment: bool = True
    randaugment_magnitude: float = 9
    randaugment_num_ops: int = 2
    randaugment_magnitude_std: float = 0.5
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    mix_switch_prob: float = 0.5
    mix_prob: float = 1.0
    random_erasing: float = 0.25
    eval_crop_ratio: float = 0.875

    def __post_init__(self):
        checks = [
            (0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
             "crop_scale must be (low, high) with 0 < low <= high <= 1"),
            (0 <= self.randaugment_magnitude <= 10, "randaugment_magnitude must be in [0, 10] (timm's scale)"),
            (int(self.randaugment_num_ops) >= 1, "randaugment_num_ops must be >= 1"),
            (0 <= self.randaugment_magnitude_std < float("inf"),
             "randaugment_magnitude_std must be a finite value >= 0 (0: a fixed magnitude)"),
            (0 <= self.mixup_alpha < float("inf"), "mixup_alpha must be a finite value >= 0 (0: off)"),
            (0 <= self.cutmix_alpha < float("inf"), "cutmix_alpha must be a finite value >= 0 (0: off)"),
            (0 <= self.mix_switch_prob <= 1 and 0 <= self.mix_prob <= 1, "mix probabilities must be in [0, 1]"),
            (0 <= self.random_erasing <= 1, "random_erasing is a probability in [0, 1]"),
            (0 < self.eval_crop_ratio <= 1, "eval_crop_ratio must be in (0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"AugmentConfig: {message}; got {self}.")

    @classmethod
    def none(cls):
        """Every augmentation off: training batches look like validation batches."""
        return cls(random_resized_crop=False, hflip=False, randaugment=False, mixup_alpha=0.0,
                   cutmix_alpha=0.0, mix_prob=0.0, random_erasing=0.0)

    @classmethod
    def resolve(cls, augment):
        """The pipeline's augmentation from load(augment=...).

        None or True: the ConvNeXt recipe's defaults (every field above: RandAugment, MixUp/CutMix,
        random erasing, ...). False or "none": no augmentation (AugmentConfig.none()). A dict: those
        fields over the defaults. An AugmentConfig: as is.
        """
        if augment is None or augment is True:
            return cls()
        if augment is False or (isinstance(augment, str) and augment.lower() == "none"):
            return cls.none()
        if isinstance(augment, cls):
            return augment
        if isinstance(augment, dict):
            unknown = sorted(set(augment) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(f"Unknown AugmentConfig field(s) {unknown}; valid: "
                                 f"{[f.name for f in dataclasses.fields(cls)]}.")
            return cls(**augment)
        if isinstance(augment, str):
            raise ValueError(f"augment={augment!r} is not understood: pass None or True (the recipe's "
                             "defaults), False or 'none' (no augmentation), a dict of AugmentConfig fields "
                             "or an AugmentConfig.")
        raise TypeError("augment must be None/True (recipe defaults), False/'none', an AugmentConfig or a "
                        f"dict of its fields, got {type(augment).__name__}.")

    @property
    def mixes(self):
        return self.mix_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


@dataclass
class DataBundle:
    """Train and validation datasets of (float32 pixels in [0, 255], float32 one-hot labels) + facts."""

    train: object
    validation: object
    class_names: list
    train_count: int
    validation_count: int
    class_counts: dict
    skipped: list = field(default_factory=list)
    normalization: str = "imagenet"
    small_input: bool = False
    image_size: int = 224
    arrays: bool = False  # in-memory arrays (CIFAR): training crops are pad-and-crop, not resized crops
    # Held out from the training images (load(selection_fraction=...)) to pick the best epoch on, so
    # that the validation/test split is only reported, never selected on. None when not asked for.
    selection: object = None
    selection_count: int = 0
    # The label smoothing folded into the training targets (load(label_smoothing=...), as timm's
    # Mixup does); a training loss must then not smooth again. Validation/selection targets are one-hot.
    label_smoothing: float = 0.0

    @property
    def num_classes(self):
        return len(self.class_names)
