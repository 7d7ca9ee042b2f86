"""The two from-scratch anchors of Deep Learning with Python (F. Chollet, 2nd ed.) for cats vs dogs,
as the book builds and trains them, for benchmarks/scratch_catsdogs.py to run beside our recipe.

- ch. 8 small convnet: five 3x3 convolutions (32, 64, 128, 256, 256), max-pooling between them,
  dropout 0.5; the book reports 83.5% test accuracy after 100 epochs at 180 px.
- ch. 9 mini-Xception: residual blocks of two SeparableConv2D + BatchNorm (32 to 512 filters), global
  average pooling, dropout 0.5; the book reports 90.8% ("about the ceiling from scratch").
Both: RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.2) inside the model, Rescaling(1/255),
RMSprop at Keras' defaults, batch 32. The book's sigmoid unit + binary cross-entropy is written here
as a 2-way softmax + categorical cross-entropy (the same model for two classes) so the models read the
one-hot labels of kconvnext.data.load like ours.
"""
import keras
from keras import layers

IMAGE_SIZE = 180  # the book's
BATCH_SIZE = 32
EPOCHS = 100


def _augmentation():
    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.2)],
                            name="augmentation")


def small_convnet(image_size=IMAGE_SIZE, num_classes=2):
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1 / 255)(_augmentation()(inputs))
    for i, filters in enumerate((32, 64, 128, 256, 256)):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        if i < 4:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.5)(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="textbook_convnet")


def mini_xception(image_size=IMAGE_SIZE, num_classes=2):
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1 / 255)(_augmentation()(inputs))
    x = layers.Conv2D(32, 5, use_bias=False)(x)
    for filters in (32, 64, 128, 256, 512):
        residual = x
        for _ in range(2):
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add([x, layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(residual)])
    x = layers.Dropout(0.5)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="textbook_mini_xception")


MODELS = {"textbook_convnet": small_convnet, "textbook_mini_xception": mini_xception}


def compile_as_the_book(model):
    model.compile(optimizer=keras.optimizers.RMSprop(), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model
