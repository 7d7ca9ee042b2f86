"""kconvnext.data on generated images: formats, bad files, errors, splits, augmentations, determinism."""
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import jax_env
from kconvnext.data import AugmentConfig, load
from kconvnext.data import scan as scan_module
from kconvnext.data.pipeline import decode_file
from kconvnext.data.sources import cifar10, locate
from kconvnext.data.split import holdout_split, stratified_limit

# --- generated image folders: every format and colour mode users have, plus bad files ---------------
# name -> (PIL mode to save in, file name); solid colours so decoding can be checked pixel for pixel.
GOOD_FORMATS = {
    "rgb.jpg": "RGB",
    "gray.jpg": "L",
    "cmyk.jpg": "CMYK",
    "rgba.png": "RGBA",
    "palette.png": "P",
    "gray16.png": "I;16",
    "rgb.bmp": "RGB",
    "palette.bmp": "P",
    "anim.gif": "P",
}
BAD_FILES = ("empty.jpg", "text.jpg", "truncated.jpg")


def save_image(path, mode, color, size=(40, 30)):
    """A solid-colour image of `color` (RGB) saved in `mode`, with a gradient so crops are not trivial."""
    rgb = np.empty((size[1], size[0], 3), np.uint8)
    rgb[:] = color
    image = Image.fromarray(rgb)
    if mode == "I;16":
        image = Image.fromarray(np.full((size[1], size[0]), color[0] * 257, np.uint16))
    elif mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


def make_dir(path):
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)


def write_bad_files(folder, source_jpeg):
    folder = Path(folder)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not an image\n")
    data = Path(source_jpeg).read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])


def make_class_folders(root, classes=("a", "b"), per_class=6, bad_in=None, seed=0):
    """root/<class>/img_<i>.<fmt>: every format in turn, random sizes; bad files in class `bad_in`."""
    rng = np.random.default_rng(seed)
    formats = list(GOOD_FORMATS.items())
    for c, name in enumerate(classes):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            fname, mode = formats[(i + c) % len(formats)]
            stem, ext = fname.split(".")
            size = (int(rng.integers(24, 80)), int(rng.integers(24, 80)))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            save_image(folder / f"img_{i}_{stem}.{ext}", mode, color, size)
        if name == bad_in:
            write_bad_files(folder, save_image(folder / "source_for_truncation.jpg", "RGB", (10, 200, 30), (64, 64)))
    return Path(root)


SIZE = 32


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Scan cache and converted files go to a temp dir; no data set location leaks in from the env."""
    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(locate.ENV_VAR, raising=False)


@pytest.fixture()
def mixed(tmp_path):
    return make_class_folders(tmp_path / "mixed", per_class=9, bad_in="b")


@pytest.fixture()
def clean(tmp_path):
    return make_class_folders(tmp_path / "clean", per_class=9)


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def first_batch(bundle):
    x, y = next(iter(bundle.train))
    return x.numpy(), y.numpy()


# --- formats and bad files -------------------------------------------------------------------------

def test_every_format_decodes_to_the_same_rgb_as_pil(tmp_path):
    for i, (fname, mode) in enumerate(GOOD_FORMATS.items()):
        save_image(tmp_path / fname, mode, (200, 40 + 10 * i, 90), (20, 16))
    paths = [str(tmp_path / f) for f in GOOD_FORMATS]
    usable, skipped = scan_module.scan_files(paths)
    assert skipped == []
    for original, path in zip(paths, usable):
        decoded = decode_file(path).numpy()
        with Image.open(original) as image:
            expected = np.asarray(image.convert("RGB"), np.float32)
        if image.mode == "I;16":  # PIL clips 16-bit values; TF scales them to 8 bits, which is right
            expected = np.asarray(image, np.float32)[..., None].repeat(3, -1) / 257
        assert decoded.shape == expected.shape, original
        assert np.abs(decoded - expected).mean() < 3, original
    assert usable[paths.index(str(tmp_path / "palette.bmp"))].endswith(".png"), "palette BMP is converted"


def test_bad_files_are_skipped_reported_and_listed(mixed, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load("folder", data_dir=mixed, image_size=SIZE, batch_size=4, augment=AugmentConfig.none(),
                      validation_fraction=0.3, output_dir=tmp_path / "run")
    skipped = {Path(p).name: reason for p, reason in bundle.skipped}
    assert set(skipped) == set(BAD_FILES)
    assert "empty" in skipped["empty.jpg"]
    assert "not a JPEG" in skipped["text.jpg"]
    assert "does not decode" in skipped["truncated.jpg"]
    messages = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    assert len(messages) == 1 and "Skipping 3 image file(s)" in messages[0]
    assert all(name in messages[0] for name in BAD_FILES)
    listed = (tmp_path / "run" / "skipped_files.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == sorted(BAD_FILES)
    # 9 good per class + the helper's source JPEG in b; every usable image comes out, RGB, in range.
    assert bundle.train_count + bundle.validation_count == 19
    # Training keeps full batches only (the last partial one is dropped); validation keeps every image.
    for ds, count in ((bundle.train, bundle.train_count // 4 * 4), (bundle.validation, bundle.validation_count)):
        got = batches(ds)
        assert sum(len(x) for x, _ in got) == count
        for x, y in got:
            assert x.shape[1:] == (SIZE, SIZE, 3) and x.dtype == np.float32
            assert 0 <= x.min() and x.max() <= 255
            np.testing.assert_allclose(y.sum(1), 1.0)


def test_scan_is_cached(mixed, monkeypatch):
    paths = sorted(str(p) for p in mixed.rglob("*.*"))
    first = scan_module.scan_files(paths)
    monkeypatch.setattr(scan_module, "check_file", lambda p: pytest.fail(f"re-scanned {p}"))
    assert scan_module.scan_files(paths) == first


# --- clear errors ----------------------------------------------------------------------------------

def test_missing_directory_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load("folder", data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match="needs data_dir"):
        load("folder")
    with pytest.raises(ValueError, match="Unknown data set"):
        load("imagenet22k")


def test_empty_class_folder_single_class_and_mismatched_splits(tmp_path):
    root = make_class_folders(tmp_path / "d", classes=("a", "b"), per_class=2)
    (root / "c").mkdir()
    with pytest.raises(ValueError, match=r"Empty class folder.*'.*c'"):
        load("folder", data_dir=root)
    single = make_class_folders(tmp_path / "s", classes=("only",), per_class=3)
    with pytest.raises(ValueError, match="single class"):
        load("folder", data_dir=single)
    make_class_folders(tmp_path / "split" / "train", classes=("a", "b"), per_class=2)
    make_class_folders(tmp_path / "split" / "val", classes=("a", "x"), per_class=2)
    with pytest.raises(ValueError, match=r"only in train: \['b'\].*only in validation: \['x'\]"):
        load("folder", data_dir=tmp_path / "split")
    with pytest.raises(ValueError, match="no class sub-folders"):
        (tmp_path / "flat").mkdir()
        load("folder", data_dir=tmp_path / "flat")


def test_never_trains_on_zero_images(tmp_path):
    root = make_class_folders(tmp_path / "d", classes=("a", "b"), per_class=2)
    for p in (root / "b").iterdir():
        p.write_bytes(b"")
    with pytest.raises(ValueError, match=r"No usable train images for class\(es\) \['b'\]"):
        load("folder", data_dir=root, validation_fraction=0.5)


def test_train_and_validation_sibling_layout(tmp_path):
    make_class_folders(tmp_path / "d" / "train", per_class=4)
    make_class_folders(tmp_path / "d" / "validation", per_class=2, seed=1)
    # Sub-folders of a class count (as in ImageFolder); hidden folders such as .ipynb_checkpoints do not.
    save_image(make_dir(tmp_path / "d" / "train" / "a" / "more") / "x.png", "RGB", (1, 2, 3))
    save_image(make_dir(tmp_path / "d" / "train" / "a" / ".ipynb_checkpoints") / "y.png", "RGB", (1, 2, 3))
    bundle = load("folder", data_dir=tmp_path / "d", image_size=SIZE, batch_size=8, augment=AugmentConfig.none())
    assert bundle.class_counts == {"train": {"a": 5, "b": 4}, "validation": {"a": 2, "b": 2}}
    assert bundle.normalization == "imagenet" and bundle.small_input


# --- splits ------------------------------------------------------------------------------------------

def test_holdout_split_is_stratified_seeded_and_disjoint():
    labels = np.array([0] * 90 + [1] * 10)
    train, val = holdout_split(labels, 0.2, seed=3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 100
    assert np.bincount(labels[val]).tolist() == [18, 2]
    again = holdout_split(labels, 0.2, seed=3)
    assert np.array_equal(val, again[1])
    assert not np.array_equal(val, holdout_split(labels, 0.2, seed=4)[1])


def test_stratified_limit_keeps_every_class():
    labels = np.array([0] * 90 + [1] * 9 + [2])
    idx = stratified_limit(labels, 10, seed=0)
    assert len(idx) == 10 and set(labels[idx]) == {0, 1, 2}
    assert len(stratified_limit(labels, None, 0)) == 100


def test_augment_config_resolution():
    assert AugmentConfig.resolve(None) == AugmentConfig()
    assert AugmentConfig.resolve({"mixup_alpha": 0.0}).mixup_alpha == 0.0
    with pytest.raises(ValueError, match="Unknown AugmentConfig field"):
        AugmentConfig.resolve({"mixupalpha": 0.2})
    with pytest.raises(ValueError, match="random_erasing"):
        AugmentConfig(random_erasing=2)
    off = AugmentConfig.none()
    assert not (off.random_resized_crop or off.hflip or off.randaugment or off.mixes or off.random_erasing)


# --- augmentations -------------------------------------------------------------------------------------

ONLY = {
    "none": {},
    "random_resized_crop": {"random_resized_crop": True},
    "hflip": {"hflip": True},
    "randaugment": {"randaugment": True},
    "mixup": {"mixup_alpha": 0.8, "mix_prob": 1.0},
    "cutmix": {"cutmix_alpha": 1.0, "mix_prob": 1.0},
    "random_erasing": {"random_erasing": 1.0},
    "all (recipe defaults)": None,
}


@pytest.mark.parametrize("which", list(ONLY))
def test_each_augmentation_keeps_shape_range_and_labels(clean, which):
    from dataclasses import asdict, replace
    config = AugmentConfig() if ONLY[which] is None else replace(AugmentConfig.none(), **ONLY[which])
    bundle = load("folder", data_dir=clean, image_size=SIZE, batch_size=8, augment=asdict(config),
                  validation_fraction=0.3, seed=1)
    plain = load("folder", data_dir=clean, image_size=SIZE, batch_size=8, augment=AugmentConfig.none(),
                 validation_fraction=0.3, seed=1)
    x, y = first_batch(bundle)
    x0, y0 = first_batch(plain)
    assert x.shape == (8, SIZE, SIZE, 3) and x.dtype == np.float32 and y.shape == (8, 2)
    assert x.min() >= 0 and x.max() <= 255
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-5)
    if which == "none":
        np.testing.assert_array_equal(x, x0)
    else:
        assert np.abs(x - x0).max() > 1, f"{which} changed nothing"
    if config.mixes:
        assert ((y > 0) & (y < 1)).any(), "mixing gives soft labels"
    else:
        assert set(np.unique(y)) <= {0.0, 1.0}


def test_pipelines_are_traced_without_autograph(clean, monkeypatch):
    """tf.data runs every mapped function through AutoGraph, which rewrites the source of it and of
    everything it calls: 12% of a short training command (RandAugment's ops, the crops, the
    mixing). The pipeline's Python branches are on settings, never on tensors, so it needs none.
    (TensorFlow's transpiler is watched: it is asked for every conversion, cached or not.)"""
    from tensorflow.python.autograph.pyct import transpiler

    converted = []
    transform = transpiler.PyToPy.transform_function

    def watched(self, fn, user_context):
        converted.append(f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}")
        return transform(self, fn, user_context)

    monkeypatch.setattr(transpiler.PyToPy, "transform_function", watched)
    bundle = load("folder", data_dir=clean, image_size=SIZE, batch_size=8, seed=1, validation_fraction=0.3,
                  augment={"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "random_erasing": 0.25})
    next(iter(bundle.train)), next(iter(bundle.validation))
    assert not [name for name in converted if name.startswith("kconvnext")], converted


@pytest.mark.slow
def test_same_seed_same_batches_new_epoch_new_batches(clean):
    make = lambda seed: load("folder", data_dir=clean, image_size=SIZE, batch_size=8,  # noqa: E731
                             validation_fraction=0.3, seed=seed)
    bundle = make(0)
    epoch1 = batches(bundle.train)
    epoch2 = batches(bundle.train)
    again = batches(make(0).train)
    for (xa, ya), (xb, yb) in zip(epoch1, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(epoch1[0][0], epoch2[0][0]), "each epoch is reshuffled and re-augmented"
    assert not np.array_equal(epoch1[0][0], first_batch(make(1))[0])
    val1, val2 = batches(bundle.validation), batches(bundle.validation)
    np.testing.assert_array_equal(val1[0][0], val2[0][0])


def test_validation_is_resize_then_center_crop(tmp_path):
    root = tmp_path / "d"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        # 64 x 128 (h x w): left quarter red, the rest blue; a 0.875 crop at 32 keeps only blue + edge.
        rgb = np.zeros((64, 128, 3), np.uint8)
        rgb[:, :32] = (255, 0, 0)
        rgb[:, 32:] = (0, 0, 255)
        for i in range(2):
            Image.fromarray(rgb).save(root / c / f"{i}.png")
    bundle = load("folder", data_dir=root, image_size=SIZE, batch_size=2, validation_fraction=0.5,
                  augment=AugmentConfig.none())
    x, _ = next(iter(bundle.validation))
    # Shorter side 64 -> 32/0.875 = 37 (width 73), then the central 32: columns 20..52 of 73, all blue.
    np.testing.assert_allclose(x.numpy()[..., 2], 255, atol=1)
    np.testing.assert_allclose(x.numpy()[..., 0], 0, atol=1)


@pytest.mark.slow
def test_decoded_images_are_cached_shrunk_and_match_the_uncached_pipeline(tmp_path):
    """Files larger than the crops need are decoded once, shrunk and kept as uint8; the batches are
    the uncached pipeline's up to resampling, in the same seeded order."""
    from dataclasses import replace

    from kconvnext.data.pipeline import cached_bytes, kept_short_side

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        make_dir(tmp_path / "big" / c)
        for i in range(5):
            h, w = int(rng.integers(150, 220)), int(rng.integers(150, 260))
            yy, xx = np.mgrid[0:h, 0:w]  # smooth gradients: resampling twice stays close to once
            rgb = np.stack([255 * xx / w, 255 * yy / h, np.full((h, w), 40.0 + 40 * i)], -1).astype(np.uint8)
            Image.fromarray(rgb).save(tmp_path / "big" / c / f"{i}.jpg", quality=95)
    center = replace(AugmentConfig.none(), random_resized_crop=False)
    kwargs = dict(data_dir=tmp_path / "big", image_size=SIZE, batch_size=4, validation_fraction=0.3, seed=2)
    cached, plain = load("folder", augment=center, **kwargs), load("folder", augment=center, cache_limit_bytes=None, **kwargs)
    assert kept_short_side(SIZE, center) == 37  # 32 / 0.875: what the center crop reads
    for _ in range(2):  # the second epoch reads the cache
        got, want = batches(cached.train), batches(plain.train)
        for (x, y), (x0, y0) in zip(got, want, strict=True):
            np.testing.assert_array_equal(y, y0)
            assert np.abs(x - x0).mean() < 3.0
        for (x, y), (x0, y0) in zip(batches(cached.validation), batches(plain.validation), strict=True):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(x, x0)  # validation is not cached
    # The memory estimate reads headers: 37 px shorter side, the other in proportion (+10%).
    paths = sorted((tmp_path / "big").rglob("*.jpg"))
    exact = sum(round(w * 37 / min(w, h)) * round(h * 37 / min(w, h)) * 3 for w, h in (Image.open(p).size for p in paths))
    assert exact <= cached_bytes(paths, 37) <= 1.2 * exact
    # Over the limit: decoded every epoch, exactly the uncached pipeline.
    over = load("folder", augment=center, cache_limit_bytes=exact // 10, **kwargs)
    fresh = load("folder", augment=center, cache_limit_bytes=None, **kwargs)
    for (x, _), (x0, _) in zip(batches(over.train), batches(fresh.train), strict=True):
        np.testing.assert_array_equal(x, x0)
    # Random crops from the cached images: seeded like the rest, and never from too few pixels.
    crops = replace(center, random_resized_crop=True, crop_scale=(0.35, 1.0))
    assert kept_short_side(SIZE, crops) == 63  # ceil(32 / sqrt(0.35 * 3/4))
    one, two = (load("folder", augment=crops, **kwargs) for _ in range(2))
    for (x, y), (x0, y0) in zip(batches(one.train), batches(two.train), strict=True):
        np.testing.assert_array_equal(x, x0)
        assert x.shape[1:] == (SIZE, SIZE, 3) and 0 <= x.min() and x.max() <= 255


# --- CIFAR pickles and the online path -------------------------------------------------------------------

class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/kconvnext-pwned"),))


def test_cifar_reader_refuses_arbitrary_objects(tmp_path):
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": [0]}))
    with pytest.raises(ValueError, match="refused to load pathlib"):
        cifar10.read_batch(evil)
    assert not Path("/tmp/kconvnext-pwned").exists()
    wrong = tmp_path / "wrong"
    wrong.write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        cifar10.read_batch(wrong)


def fake_cifar(folder, n=20):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=3))
    return folder


def test_download_only_when_no_local_copy(tmp_path, monkeypatch):
    calls = []

    def offline_get_file(**kwargs):  # offline stand-in for get_file: records the call, never downloads
        calls.append(kwargs)
        raise OSError("network unreachable")

    monkeypatch.setattr(locate.keras.utils, "get_file", offline_get_file)
    with pytest.raises(FileNotFoundError, match=r"--data-dir.*KCONVNEXT_DATA_DIR"):
        load("cifar10")
    assert len(calls) == 1 and calls[0]["file_hash"] == cifar10.FILE_HASH and calls[0]["extract"]
    fake_cifar(tmp_path / "root" / cifar10.FOLDER)
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "root"))
    bundle = load("cifar10", batch_size=10, augment=AugmentConfig.none())
    assert len(calls) == 1 and bundle.train_count == 100 and bundle.image_size == 32


def test_download_path_uses_the_extracted_folder(tmp_path, monkeypatch):
    extracted = tmp_path / "keras" / "cifar-10-python_extracted"
    fake_cifar(extracted / cifar10.FOLDER)
    monkeypatch.setattr(locate.keras.utils, "get_file", lambda **kwargs: str(extracted))
    bundle = load("cifar10", batch_size=10, augment=AugmentConfig.none())
    assert bundle.validation_count == 20 and bundle.normalization == "cifar10" and bundle.small_input
    assert bundle.class_names == cifar10.DEFAULT_NAMES  # no batches.meta in the fake copy


def test_wrong_data_dir_is_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setattr(locate.keras.utils, "get_file", lambda **kwargs: pytest.fail("downloaded"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="does not hold the data set"):
        load("cifar10", data_dir=tmp_path / "empty")


@pytest.mark.slow
def test_pipeline_runs_under_the_jax_backend(tmp_path):
    """The Keras augmentation layers run as TF ops inside tf.data whatever KERAS_BACKEND is."""
    import subprocess
    import sys
    root = make_class_folders(tmp_path / "d", per_class=4)
    script = (
        "import keras, numpy as np\n"
        "from kconvnext.data import load\n"
        "assert keras.backend.backend() == 'jax'\n"
        f"b = load('folder', data_dir={str(root)!r}, image_size=16, batch_size=4, validation_fraction=0.25)\n"
        "x, y = next(iter(b.train))\n"
        "assert x.shape == (4, 16, 16, 3) and 0 <= float(np.min(x)) and float(np.max(x)) <= 255\n"
        "print('ok')\n"
    )
    env = {**jax_env(), "KCONVNEXT_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_selection_hold_out_is_carved_from_train_only(catsdogs_dir):
    """Issue 12 item 9: checkpoints are chosen on training images held out, never on the reported split."""
    from kconvnext.data.loader import select_splits

    plain = select_splits("catsdogs", data_dir=str(catsdogs_dir), limit=40)
    held = select_splits("catsdogs", data_dir=str(catsdogs_dir), limit=40, selection_fraction=0.25)
    assert held.validation.paths == plain.validation.paths  # the reported split is untouched
    assert sorted(held.train.paths + held.selection.paths) == sorted(plain.train.paths)
    assert not set(held.train.paths) & set(held.selection.paths)
    assert held.counts["selection"] == {"cats": 5, "dogs": 5}  # stratified, seeded
    again = select_splits("catsdogs", data_dir=str(catsdogs_dir), limit=40, selection_fraction=0.25)
    assert again.selection.paths == held.selection.paths
    bundle = load("catsdogs", data_dir=str(catsdogs_dir), image_size=32, batch_size=4, limit=40,
                  selection_fraction=0.25, augment=AugmentConfig.none())
    assert bundle.selection_count == 10 and bundle.train_count == 30
    assert sum(int(x.shape[0]) for x, _ in bundle.selection) == 10  # every held-out image, unaugmented


# --- issue 21 item 1: datasets that model.fit understands ---------------------------------------------

@pytest.mark.slow
def test_fit_on_loaded_data_takes_exactly_epochs_times_batches_steps_silently(catsdogs_dir, caplog):
    """400 training images in batches of 100: 4 steps an epoch, 12 in 3 epochs, and no "ran out of
    data" warning (unknown cardinality made keras take 15 steps and warn every epoch)."""
    import logging

    import keras

    bundle = load("catsdogs", data_dir=str(catsdogs_dir), image_size=16, batch_size=100, limit=400,
                  augment=False, selection_fraction=0.25)
    assert (bundle.train_count, bundle.validation_count, bundle.selection_count) == (300, 400, 100)
    assert (len(bundle.train), len(bundle.validation), len(bundle.selection)) == (3, 4, 1)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(bundle.train, validation_data=bundle.validation, epochs=3, verbose=0)
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "ran out of data" in m], messages
    assert int(model.optimizer.iterations) == 3 * 3
    assert sum(int(x.shape[0]) for x, _ in bundle.validation) == 400  # validation keeps every image


def test_augment_false_and_none_string_switch_augmentation_off():
    """None/True: the recipe's augmentation (the ConvNeXt defaults); False/"none": none at all."""
    assert AugmentConfig.resolve(None) == AugmentConfig.resolve(True) == AugmentConfig()
    assert AugmentConfig.resolve(False) == AugmentConfig.resolve("none") == AugmentConfig.none()
    with pytest.raises(ValueError, match="augment='full'.*False or 'none'"):
        AugmentConfig.resolve("full")
