"""Recipes: shipped files load, carry the paper's values, and bad keys/types are clear errors."""
import pytest

from kconvnext.training import list_recipes, load_recipe
from kconvnext.training.config import config_from_dict, parse_set
from kconvnext.training.summary import _recipe_line

SHIPPED = {"imagenet_convnext", "finetune_convnext", "catsdogs_convnext", "catsdogs_resnet",
           "catsdogs_resnext", "catsdogs_probe", "catsdogs_convnext_scratch", "catsdogs_resnet_scratch",
           "catsdogs_resnext_scratch", "cifar10_convnext", "cifar10_resnet", "cifar10_resnext", "catsdogs_small",
           "catsdogs_finetune"}


def test_every_recipe_ships_and_validates():
    assert SHIPPED <= set(list_recipes())
    for name in SHIPPED:
        config, _ = load_recipe(name)
        assert config.epochs > 0 and config.effective_lr() > 0


def test_imagenet_recipe_is_the_papers():
    c, _ = load_recipe("imagenet_convnext")
    assert (c.base_lr, c.base_batch_size, c.weight_decay, c.beta_1, c.beta_2) == (4e-3, 4096, 0.05, 0.9, 0.999)
    assert (c.epochs, c.warmup_epochs, c.min_lr, c.label_smoothing) == (300, 20, 1e-6, 0.1)
    assert {k: c.drop_path_for(k) for k in ("convnext_t", "convnext_s", "convnext_b", "convnext_l")} == {
        "convnext_t": 0.1, "convnext_s": 0.4, "convnext_b": 0.5, "convnext_l": 0.5}
    assert c.layer_scale_init == 1e-6 and c.ema and c.ema_momentum == 0.9999
    a = c.augment
    assert (a.randaugment_magnitude, a.randaugment_magnitude_std, a.mixup_alpha, a.cutmix_alpha,
            a.random_erasing) == (9, 0.5, 0.8, 1.0, 0.25)
    assert a.pipeline_dict()["randaugment_magnitude_std"] == 0.5  # applied by the data pipeline
    # Linear scaling rule: half the batch, half the lr.
    half, _ = load_recipe("imagenet_convnext", overrides={"batch_size": 2048})
    assert half.effective_lr() == pytest.approx(2e-3)


def test_finetune_recipe_extends_imagenet():
    c, _ = load_recipe("finetune_convnext")
    assert (c.base_lr, c.weight_decay, c.head_init_scale) == (5e-5, 1e-8, 0.001)
    assert 0.7 <= c.layer_decay <= 0.8
    assert c.augment.mixup_alpha == 0 and c.augment.cutmix_alpha == 0
    assert c.beta_2 == 0.999 and c.label_smoothing == 0.1  # inherited


def test_user_recipes_match_their_data():
    assert load_recipe(dataset="catsdogs", family="convnext")[0].image_size == 224
    for family in ("convnext", "resnet", "resnext"):
        c, path = load_recipe(dataset="cifar10", family=family)
        assert path.name == f"cifar10_{family}.yaml"
        assert c.image_size == 32 and c.small_input


def test_unknown_key_names_file_and_suggests(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nweight_decy: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*'weight_decy'.*Did you mean 'weight_decay'"):
        load_recipe(str(bad))
    bad.write_text("augment:\n  mixup: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: augment.*'mixup'.*mixup_alpha"):
        load_recipe(str(bad))


def test_wrong_type_names_key(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("epochs: ten\n")
    with pytest.raises(ValueError, match=r"typo\.yaml: key 'epochs': expected int, got 'ten'"):
        load_recipe(str(bad))
    with pytest.raises(ValueError, match=r"'strategy' must be one of"):
        config_from_dict({"strategy": "tpu"})


def test_set_overrides_are_typed():
    c, _ = load_recipe("catsdogs_convnext_scratch", overrides=parse_set(
        ["epochs=3", "lr=1e-3", "augment.mixup_alpha=0", "model.depths=[1,1,1,1]", "global_clipnorm=null"]))
    assert c.epochs == 3 and c.lr == 1e-3 and c.effective_lr() == 1e-3
    assert c.augment.mixup_alpha == 0.0 and c.augment.cutmix_alpha == 1.0  # nested merge keeps siblings
    assert c.model == {"depths": [1, 1, 1, 1]} and c.global_clipnorm is None
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_set(["epochs"])
    with pytest.raises(ValueError, match=r"key 'batch_size': expected int"):
        load_recipe("catsdogs_convnext_scratch", overrides=parse_set(["batch_size=big"]))


def test_family_section_applies_to_its_family_under_set(tmp_path):
    recipe = tmp_path / "mixed.yaml"
    recipe.write_text("base_lr: 4.0e-3\nepochs: 5\nfamilies:\n  convnext:\n    base_lr: 1.0e-3\n"
                      "    augment: {mixup_alpha: 0.0}\n")
    convnext, _ = load_recipe(str(recipe), family="convnext")
    resnet, _ = load_recipe(str(recipe), family="resnet")
    assert (convnext.base_lr, convnext.augment.mixup_alpha, convnext.epochs) == (1e-3, 0.0, 5)
    assert resnet.base_lr == 4e-3 and resnet.augment.mixup_alpha == config_from_dict({}).augment.mixup_alpha
    assert load_recipe(str(recipe), family="convnext", overrides={"base_lr": 5e-4})[0].base_lr == 5e-4
    assert "for convnext: {'base_lr': 0.001" in _recipe_line(recipe, "convnext", None)  # the run says so
    assert "for resnet" not in _recipe_line(recipe, "resnet", None)
    child = tmp_path / "child.yaml"  # a recipe that extends it keeps (and may refine) the section
    child.write_text("extends: mixed.yaml\nfamilies:\n  convnext: {epochs: 7}\n")
    refined, _ = load_recipe(str(child), family="convnext")
    assert (refined.base_lr, refined.epochs) == (1e-3, 7)
    recipe.write_text("families:\n  vit:\n    base_lr: 1.0e-3\n")
    with pytest.raises(ValueError, match=r"mixed\.yaml: `families` maps a model family \(convnext, resnet"):
        load_recipe(str(recipe), family="convnext")
    recipe.write_text("families:\n  convnext:\n    base_lr: fast\n")
    with pytest.raises(ValueError, match=r"mixed\.yaml: families: convnext: key 'base_lr'"):
        load_recipe(str(recipe), family="convnext")


def test_summary_names_a_shipped_recipe_as_the_user_sees_it(tmp_path, monkeypatch):
    """In the checkout the start summary says recipes/NAME.yaml (where the user finds it), not the
    absolute path of the package's folder; a recipe elsewhere keeps a path the user can open."""
    from kconvnext.training.recipes import default_recipe_path, recipes_dir

    shipped = default_recipe_path("catsdogs", "convnext")
    monkeypatch.chdir(recipes_dir().parent)
    assert _recipe_line(shipped, "convnext", None) == "recipe    recipes/catsdogs_convnext.yaml"
    (tmp_path / "recipes").symlink_to(recipes_dir(), target_is_directory=True)  # a user's folder with a link
    monkeypatch.chdir(tmp_path)
    assert _recipe_line(shipped, "convnext", None) == "recipe    recipes/catsdogs_convnext.yaml"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert _recipe_line(shipped, "convnext", None) == f"recipe    {shipped}"


@pytest.mark.slow
def test_jit_compile_is_a_recipe_key_that_reaches_keras_compile():
    """XLA pays for some models and not others on a CPU, so a recipe chooses it (null: Keras' auto)."""
    import keras

    from kconvnext import create_model
    from kconvnext.training.model_setup import compile_model

    for value, expected in ((True, True), (False, False), (None, False)):  # auto: off for TF on a CPU
        config = config_from_dict({"jit_compile": value})
        model = create_model("resnet18", num_classes=2, input_shape=(32, 32, 3))
        compile_model(model, "resnet18", config, steps_per_epoch=2, num_classes=2, label_smoothing=0.1)
        assert model.jit_compile is expected
        keras.backend.clear_session()
    with pytest.raises(ValueError, match="jit_compile"):
        config_from_dict({"jit_compile": "yes please"})


def test_every_data_set_has_a_default_recipe_and_one_list_names_them():
    from kconvnext.data.sources import DATASETS
    from kconvnext.training.recipes import DATASET_RECIPES

    assert set(DATASET_RECIPES) == set(DATASETS)
