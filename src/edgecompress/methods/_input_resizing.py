"""Model surgery for a smaller input resolution: a Resizing layer in front of the layers that read the image.

The model keeps its input shape, so every stage and the test split feed it the same images; the layers behind
the resize see a smaller square and cost less per image. Where the image's only reader is already a Resizing
layer (a student's, or an earlier downscale), that layer's size changes instead of a second one joining it.
"""
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.methods._graph import functional, rebuilt

layers = keras.layers
RESIZE_LAYER = "downscale"


def _readers(config: dict, source: str) -> list:
    """The layer entries of a functional `config` that read the output of layer `source`."""
    return [entry for entry in config["layers"]
            if any(ref[0] == source for node in entry["inbound_nodes"] for ref in node)]


def _only_resize(config: dict):
    """The entry of the Resizing layer that alone reads the image of a functional `config`, or None."""
    readers = _readers(config, config["input_layers"][0][0])
    return readers[0] if len(readers) == 1 and readers[0]["class_name"] == "Resizing" else None


def seen_size(model) -> int:
    """The square the layers behind the image see: the size of the Resizing layer that alone reads the model's
    input, else the input's own (its smaller side)."""
    resize = _only_resize(functional(model).get_config())
    return min(resize["config"]["height"], resize["config"]["width"]) if resize else min(model.input_shape[1:3])


def resized(model, size: int) -> keras.Model:
    """A copy of `model` (one image input) whose layers see its images resized to `size` x `size` (bilinear), with
    every weight kept; a model whose weights fit only the original size (a Flatten before a Dense) is refused."""
    if len(model.inputs) != 1 or len(model.input_shape) != 4:
        raise UserError(f"params: method downscale is not allowed on {model.name}; expected a model with one image "
                        f"input (height, width, channels), got {model.input_shape}")

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
            reader["inbound_nodes"] = [[[name, *ref[1:]] if ref[0] == source else ref for ref in node]
                                       for node in reader["inbound_nodes"]]
        position = next(i for i, e in enumerate(config["layers"]) if e["config"]["name"] == source) + 1
        return {**config, "layers": [*config["layers"][:position], entry, *config["layers"][position:]]}

    try:
        new = rebuilt(model, edit)
        for layer in new.layers:
            if layer.weights:
                layer.set_weights(model.get_layer(layer.name).get_weights())
    except ValueError as error:
        raise UserError(f"params: method downscale is not allowed on {model.name}: its weights fit only its own "
                        f"input size ({str(error).splitlines()[0]}); expected a network that pools globally before "
                        "its classifier") from None
    return new
