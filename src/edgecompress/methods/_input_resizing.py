"""Model surgery for a smaller input resolution: a Resizing layer between the image and the layers that read it.

The model keeps its input shape, so every stage and the test split feed it the same images; the layers behind
the resize see a smaller square and cost less per image. Where the image's only reader is already a Resizing
layer (a student's, or an earlier downscale), that layer's size changes instead (its interpolation kept).
"""
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.methods._graph import edited_nodes, functional, rebuilt, refs, with_weights_of

layers = keras.layers
RESIZE_LAYER = "downscale"


def _readers(config: dict, source: str) -> list:
    """The layer entries of a functional `config` that read the output of layer `source`."""
    return [entry for entry in config["layers"] if any(ref[0] == source for ref in refs(entry))]


def _only_resize(config: dict):
    """The entry of the Resizing layer that alone reads the image of a functional `config`, or None."""
    readers = _readers(config, config["input_layers"][0][0])
    return readers[0] if len(readers) == 1 and readers[0]["class_name"] == "Resizing" else None


def seen_size(model) -> int:
    """The square the layers behind the image see: the size of the Resizing layer that alone reads the model's
    input, else the input's own (its smaller side)."""
    resize = _only_resize(functional(model).get_config())
    return min(resize["config"]["height"], resize["config"]["width"]) if resize else min(model.input_shape[1:3])


def _cause(error: Exception) -> str:
    """The layer and the reason of TensorFlow's error from calling a layer, in one line: `layer "dense" (type
    Dense): Dimensions must be equal, but are 1024 and 4096`."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    where = lines[0].removeprefix("Exception encountered when calling ").rstrip(".")
    return f"{where}: {lines[1].split(' for ')[0]}" if len(lines) > 1 and where != lines[0] else lines[0]


def resized(model, size: int, setting: str = "downscale.input_size") -> keras.Model:
    """A copy of `model` (one image input) whose layers see its images resized to `size` x `size` (bilinear), with
    every weight kept. A model whose layers cannot run at that size (too small for its strides, or a Flatten before
    a Dense, whose weights fit only its own) is refused in one line naming `setting`."""
    if len(model.inputs) != 1 or len(model.input_shape) != 4:
        raise UserError(f"params: method downscale is not allowed here; the upstream model takes "
                        f"{model.input_shape}; expected one image input (height, width, channels)")

    def edit(config):
        resize = _only_resize(config)
        if resize:
            resize["config"].update(height=size, width=size)
            return config
        source = config["input_layers"][0][0]
        taken, name = {entry["config"]["name"] for entry in config["layers"]}, RESIZE_LAYER
        while name in taken:
            name += "_"
        entry = layers.serialize(layers.Resizing(size, size, interpolation="bilinear", name=name))
        entry.update(name=name, inbound_nodes=[[[source, 0, 0, {}]]])
        for reader in _readers(config, source):
            reader["inbound_nodes"] = edited_nodes(reader, lambda ref: [name, *ref[1:]] if ref[0] == source else ref)
        position = next(i for i, e in enumerate(config["layers"]) if e["config"]["name"] == source) + 1
        return {**config, "layers": [*config["layers"][:position], entry, *config["layers"][position:]]}

    try:
        return with_weights_of(rebuilt(model, edit), model)
    except ValueError as error:
        raise UserError(f"params: {setting} = {size} is not allowed; the upstream model's layers do not run on "
                        f"{size}x{size} images ({_cause(error)}); expected a larger size, or a network that pools "
                        "globally before its classifier") from None
