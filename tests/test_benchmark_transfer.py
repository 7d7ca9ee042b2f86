"""benchmarks/transfer.py, whose run gives README's table of the transfer roads, at a tiny scale."""
import pytest

from conftest import ROOT


@pytest.mark.slow
def test_transfer_benchmark_measures_every_road_on_real_images(catsdogs_dir, tmp_path, monkeypatch):
    """It calls the probe as a run does (it stopped with a TypeError once compute_features took the
    preset's transform) and times each road: inference, features, head, fine-tuning."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import transfer

    row = transfer.measure("convnext_atto", catsdogs_dir, limit=4, repeats=1, tmp=tmp_path, image_size=32,
                           depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
    assert row["model"] == "convnext_atto" and row["images"] == 8  # 4 train + 4 validation images, once each
    for key in ("inference_ips", "extract_ips", "head_seconds", "probe_minutes", "finetune_ips",
                "finetune_epoch_minutes"):
        assert row[key] > 0, key
