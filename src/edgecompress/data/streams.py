"""tf.data pipelines over the prepared splits (edgecompress.data): shards read interleaved, in a fixed order,
shuffled through a bounded buffer, batched and prefetched, so that memory does not grow with the data."""
import numpy as np

from edgecompress.core.backend import tf
from edgecompress.data import LABEL_BYTES, scale, to_float

READERS = 4  # shards read at once
MB = 1 << 20


def records(split):
    """(uint8 image, int64 label) of every image of `split`, the same order every time."""
    shape = split.image_shape

    def parse(record):
        raw = tf.io.decode_raw(record, tf.uint8)
        return tf.reshape(raw[LABEL_BYTES:], shape), tf.bitcast(raw[:LABEL_BYTES], tf.int64)

    shards = tf.data.Dataset.from_tensor_slices(split.paths)
    read = shards.interleave(tf.data.TFRecordDataset, cycle_length=min(READERS, len(split.paths)),
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).map(parse)
    # a known length, as in-memory arrays had: Keras then draws each epoch's shuffle the same way
    return read.apply(tf.data.experimental.assert_cardinality(len(split)))


def shuffle_buffer(split, buffer_mb: float) -> int:
    """How many images of `split` fit in `buffer_mb` megabytes (at least 1, at most all of them)."""
    return int(min(len(split), max(1, buffer_mb * MB // np.prod(split.image_shape))))


def batches(split, batch_size: int, input_range=(0, 1), seed=0, shuffle_mb=0, augment=None):
    """Batches of (float images scaled onto `input_range`, labels); shuffled each epoch through a buffer of
    `shuffle_mb` megabytes when it is not 0, augmented on the fly by the Keras layers `augment`."""
    ds = records(split)
    if shuffle_mb:
        ds = ds.shuffle(shuffle_buffer(split, shuffle_mb), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda images, labels: (scale(tf.cast(images, tf.float32), input_range), labels))
    if augment is not None:
        ds = ds.map(lambda images, labels: (augment(images, training=True), labels))
    options = tf.data.Options()  # workers of a multi-worker strategy each take every n-th batch, whatever the shards
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def images(split, batch_size: int, input_range=(0, 1)):
    """Batches of the float images of `split`, in order, without labels."""
    return batches(split, batch_size, input_range).map(lambda images, labels: images)


def sample(split, count: int, seed: int, input_range=(0, 1)) -> np.ndarray:
    """`count` float images of `split` drawn without replacement (seeded), in the order drawn; one pass."""
    picked = np.random.default_rng(seed).choice(len(split), size=min(count, len(split)), replace=False)
    wanted, found = {int(i): n for n, i in enumerate(picked)}, [None] * len(picked)
    for index, (image, _) in enumerate(records(split).as_numpy_iterator()):
        if index in wanted:
            found[wanted[index]] = image
    return to_float(np.stack(found), input_range)
