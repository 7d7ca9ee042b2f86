"""Recipe regression guard: a tiny ConvNeXt on a CIFAR-10 subset must clearly learn.

144 optimizer steps on 900 real training images (100 more held out to select the epoch on) with the
shipped cifar10_convnext recipe (the one docs/results.md measures; only the model size and the budget
reduced). Chance is 0.10; the floor is set well above it and well below what the recipe reaches, so it
fails on real regressions (wrong lr scaling, broken schedule, labels/pixels mix-ups, decay on norms),
not on noise. It is checked on the validation report of the selected checkpoint (1,000 images: 31.8%
here, a binomial standard error of 1.5 points), not on the 100-image hold-out that selects the epoch
(26%: one point above the floor, with a standard error of 4.4 points).
"""
import pytest

from kconvnext.training import train

FLOOR = 0.25


@pytest.mark.slow
def test_tiny_convnext_learns_cifar10_subset(tmp_path, cifar10_dir):
    result = train(
        "cifar10", "convnext_atto", data_dir=str(cifar10_dir), output=tmp_path / "run", verbose=0,
        epochs=8, batch_size=50, limit=1000,
        overrides={"model": {"depths": [1, 1, 2, 1], "dims": [32, 64, 128, 256]}},
    )
    assert result.config.small_input and result.config.image_size == 32  # the recipe's CIFAR settings
    # 1,000 images, 100 held out to select the epoch on: 18 full batches of 50 per epoch.
    assert result.budget_plan is None and int(result.model.optimizer.iterations) == 8 * 18
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.92 * losses[0]
    assert result.report["count"] == 1000 and result.report["top1"] > FLOOR, (result.report["top1"], result.history)
