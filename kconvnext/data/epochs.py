"""Epoch-level control of a training input, whichever pipeline made it.

The trainer sees either a tf.data.Dataset (kconvnext.data.load) or a portable.ImageBatches
(keras.utils.PyDataset, the TensorFlow-free path), both of known length. The few things it needs
to do to an epoch (read its length, cut it short for a budget, skip epochs on resume, and batches
of the first epoch when a Ctrl-C checkpoint was saved mid-epoch) differ between the two, and this
module is the one place that knows how.
"""
import contextlib

import keras


def _is_pydataset(dataset):
    return isinstance(dataset, keras.utils.PyDataset)


def full_batches(count, batch_size):
    """Training batches per epoch: full ones only (the last partial batch is dropped, as in timm: one
    image breaks BatchNorm and MixUp). Too few images for one batch is an error, not an empty epoch."""
    if count < batch_size:
        raise ValueError(f"The training split has {count} image(s), fewer than batch_size={batch_size}; training "
                         "uses full batches only. Lower batch_size (or raise limit / use more images).")
    return count // batch_size


def batches_per_epoch(dataset, count, batch_size):
    """Batches in one training epoch, as the dataset states it (kconvnext.data.load's always do; an
    empty epoch, a split smaller than one batch, gets full_batches' error).

    A tf.data pipeline of unknown length is refused rather than guessed: keras' fit would warn
    "Your input ran out of data" every epoch and step its optimizer past the data, which shifts
    every schedule.
    """
    if _is_pydataset(dataset):
        n = len(dataset)
    else:
        n = int(dataset.cardinality())
        if n < 0:
            raise ValueError(
                "The training dataset has no known length (tf.data cardinality "
                f"{'unknown' if n == -2 else 'infinite'}), so epochs and the lr schedule cannot be planned. "
                "State it with dataset.apply(tf.data.experimental.assert_cardinality(batches_per_epoch)) "
                "(kconvnext.data.load's datasets already do).")
    return n if n > 0 else full_batches(count, batch_size)


def first_batches(dataset, steps):
    """The first `steps` batches of each epoch (a budget shorter than one epoch)."""
    if _is_pydataset(dataset):
        dataset.limit_batches(steps)
        return dataset
    return dataset.take(steps)


def fast_forward(dataset, epochs):
    """Advance a dataset's per-epoch randomness by `epochs` epochs without reading any data.

    ImageBatches' randomness is a function of the epoch, so it jumps there. tf.data's shuffle
    (reshuffle_each_iteration) and Dataset.random (rerandomize_each_iteration) draw new seeds each
    time an iterator is created, and keras' fit creates one per epoch; creating and dropping `epochs`
    iterators makes a resumed run see the shuffle order and augmentation seeds that the
    uninterrupted run would have seen from epoch `epochs + 1` on.
    """
    if _is_pydataset(dataset):
        dataset.skip_epochs(epochs)
        return
    for _ in range(int(epochs)):
        iterator = iter(dataset)
        del iterator


@contextlib.contextmanager
def skipping_first_batches(model, batches):
    """Inside: the model's next `fit` reads its first `batches` batches without training on them.

    A Ctrl-C checkpoint is saved mid-epoch, `batches` optimizer steps into an epoch. Resuming at the
    start of that epoch would train those batches twice and run the lr schedule `batches` steps
    past its end; skipping them where fit reads them keeps everything else as it is: the epoch's
    data order (fast_forward + fit's own iterator for the epoch), the optimizer step and schedule,
    and all of fit's callbacks (validation, checkpoints, logs at the epoch's end, whose training
    loss/accuracy then cover the batches trained after the resume). Keras' TensorFlow train
    function takes the epoch's iterator, so skipping = reading the batch and returning no logs.
    Other backends: not supported (raises, the caller decides what to do).
    """
    batches = int(batches)
    if batches <= 0:
        yield
        return
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(f"resuming mid-epoch needs the TensorFlow backend, not {keras.backend.backend()}")
    model.make_train_function()
    train_function = model.train_function
    per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    left = [batches]

    def skip_or_train(iterator):
        if left[0] <= 0:
            return train_function(iterator)
        for _ in range(min(per_call, left[0])):
            iterator.get_next()
        left[0] -= min(per_call, left[0])
        return {}

    model.train_function = skip_or_train
    try:
        yield
    finally:
        model.train_function = train_function
