"""Public builders (kconvnext.convnext_t, ...): real signatures, keras.applications' argument names,
`name=`, `input_tensor`, and unknown keywords / presets refused with the valid choices. Tiny models only."""
import dataclasses
import inspect

import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.flops import count_params
from kconvnext.models import registry

KERAS_APPLICATIONS = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                      "classifier_activation")
SMALL = dict(input_shape=(32, 32, 3), small_input=True)


@pytest.mark.parametrize("name", kconvnext.list_models(include_aliases=True))
def test_every_builder_shows_its_arguments(name):
    builder = getattr(kconvnext, name)
    params = inspect.signature(builder).parameters
    assert not [p for p in params.values() if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)], params
    assert set(KERAS_APPLICATIONS) | {"num_classes", "name", "drop_path_rate", "small_input"} <= set(params)
    assert params["name"].default == name and params["weights"].default is None
    spec = kconvnext.get_spec(name)
    for key, value in spec.arch.items():  # the variant's architecture is what the defaults say
        assert params[key].default == value
    # Every argument the family builder takes, and no other, plus keras.applications' weights/classes.
    family = set(inspect.signature(spec.builder).parameters)
    assert set(params) == family | {"weights", "classes"}
    for key in params:  # help() lists each one
        assert f"    {key}=" in builder.__doc__, key
    assert builder.__name__ == name


def test_signatures_carry_the_variants_sizes():
    assert inspect.signature(kconvnext.convnext_tiny).parameters["dims"].default == (96, 192, 384, 768)
    assert inspect.signature(kconvnext.resnext50_32x4d).parameters["groups"].default == 32
    assert inspect.signature(kconvnext.roadmap_06_kernel_7x7).parameters["step"].default == 6


def test_name_names_the_model_and_the_registry_name_picks_the_architecture():
    mine = kconvnext.convnext_atto(num_classes=2, name="mine", **SMALL)
    plain = kconvnext.convnext_atto(num_classes=2, **SMALL)
    assert mine.name == "mine" and plain.name == "convnext_atto"
    assert count_params(mine) == count_params(plain)
    assert kconvnext.create_model("resnet18", name="r", num_classes=2, **SMALL).name == "r"


def test_keras_applications_arguments():
    model = kconvnext.convnext_atto(classes=3, classifier_activation="softmax", **SMALL)
    probs = model(np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)
    assert kconvnext.resnet18(classes=4, num_classes=4, **SMALL).output_shape == (None, 4)
    with pytest.raises(ValueError, match="classes=3 and num_classes=2 disagree"):
        kconvnext.convnext_atto(classes=3, num_classes=2, **SMALL)
    features = kconvnext.resnet18(include_top=False, pooling="max", **SMALL)
    assert features.output_shape == (None, 512)


def test_input_tensor_builds_the_model_on_that_tensor():
    images = keras.Input((32, 32, 3), name="raw")
    scaled = keras.layers.Rescaling(255.0)(images)  # e.g. a caller's [0, 1] -> [0, 255] front
    model = kconvnext.convnext_atto(input_tensor=scaled, num_classes=2, small_input=True)
    assert model.inputs[0] is images and model.input_shape == (None, 32, 32, 3)
    x = np.random.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    reference = kconvnext.convnext_atto(num_classes=2, **SMALL)
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x * 255.0, verbose=0), atol=1e-5)
    roadmap = kconvnext.roadmap_04_inverted_bottleneck(input_tensor=keras.Input((32, 32, 3)), num_classes=2,
                                                      depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), small_input=True)
    assert roadmap.output_shape == (None, 2)
    with pytest.raises(ValueError, match="does not match input_tensor's shape"):
        kconvnext.resnet18(input_tensor=keras.Input((32, 32, 3)), input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="input_tensor must be a Keras tensor"):
        kconvnext.resnet18(input_tensor=np.zeros((1, 32, 32, 3), "float32"))


def test_unknown_keyword_is_an_error_with_a_did_you_mean():
    with pytest.raises(ValueError, match=r"(?i)convnext_atto argument 'num_clases'\. did you mean 'num_classes'"):
        kconvnext.convnext_atto(num_clases=2)
    with pytest.raises(ValueError, match=r"(?i)did you mean 'include_top'.*Valid resnet50 arguments: include_top"):
        kconvnext.create_model("resnet50", include_tops=False)
    with pytest.raises(ValueError, match=r"(?i)did you mean 'num_classes'"):
        kconvnext.create_model("convnext_atto", num_clases=2)


def test_unknown_preset_lists_the_models_tags_before_building(monkeypatch):
    spec = kconvnext.get_spec("convnext_atto")

    def must_not_build(*args, **kwargs):
        raise AssertionError("the model was built before the weights argument was checked")

    monkeypatch.setitem(registry._REGISTRY, "convnext_atto", dataclasses.replace(spec, builder=must_not_build))
    with pytest.raises(ValueError, match=r"weights='imagenet21k': convnext_atto has no preset.*its tags: 'imagenet'"):
        kconvnext.convnext_atto(weights="imagenet21k")
