"""Residual block removal by model surgery: a block whose shortcut is the identity is replaced by the identity.

A removable block is an Add of two tensors, one of them the block's input and the other its residual branch: a
chain of single-input layers that starts at that input, each used by the next alone (the basic and bottleneck
blocks of He et al. with an identity shortcut). Without it, what read the Add reads the block's input. A block whose
shortcut projects (a strided or widening 1x1 convolution) changes the shape and stays.
"""
from dataclasses import dataclass

from edgecompress.core.backend import keras

layers = keras.layers


@dataclass(frozen=True)
class Block:
    """A residual block: its Add layer, the (layer, node, tensor) its shortcut gives the Add, its branch's layers
    (removed with it) and its shortcut's (none where the shortcut is the identity)."""
    add: str
    shortcut: tuple
    branch: tuple
    projection: tuple


def _key(tensor) -> tuple:
    history = tensor._keras_history
    return history.layer.name, history.node_index, history.tensor_index


def _uses(model) -> dict:
    """How many layer calls read each (layer, node, tensor)."""
    uses = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.keras_inputs:
                uses[_key(tensor)] = uses.get(_key(tensor), 0) + 1
    return uses


def _chain(tensor, uses) -> tuple:
    """(the layers back from `tensor` while each takes one input and its output is read once, last first; the
    tensor where that stops)."""
    path = []
    while uses.get(_key(tensor)) == 1:
        layer = tensor._keras_history.layer
        inputs = layer._inbound_nodes[0].keras_inputs if len(layer._inbound_nodes) == 1 else []
        if len(inputs) != 1:
            break
        path.append(layer.name)
        tensor = inputs[0]
    return tuple(path), _key(tensor)


def residual_blocks(model) -> list:
    """The model's residual blocks, in the order of their Add layers: an Add of two chains from one tensor, the
    shorter one (none, or a projection) its shortcut."""
    uses, blocks = _uses(model), []
    for layer in model.layers:
        if not isinstance(layer, layers.Add) or len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].keras_inputs
        if len(inputs) != 2:
            continue
        (first, start), (second, end) = (_chain(tensor, uses) for tensor in inputs)
        if start == end and len(first) != len(second):
            shortcut, branch = sorted(zip((first, second), inputs), key=lambda chain: len(chain[0]))
            blocks.append(Block(layer.name, _key(shortcut[1]), branch[0], shortcut[0]))
    return blocks


def _plain_relu(entry: dict) -> bool:
    config = entry["config"]
    return entry["class_name"] == "ReLU" and config.get("max_value") is None and not config.get("negative_slope") \
        and not config.get("threshold")


def remove_blocks(model, blocks) -> keras.Model:
    """A new functional model without `blocks` (of `residual_blocks(model)`); every other layer keeps its weights.

    A plain ReLU that comes to read another's output, as the ReLU after a removed block's Add does, is dropped with
    it: it would change nothing.
    """
    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    config = model.get_config()
    entries = {entry["config"]["name"]: entry for entry in config["layers"]}
    redirect = {block.add: list(block.shortcut) for block in blocks}
    dropped = {name for block in blocks for name in (block.add, *block.branch)}

    def resolved(ref):
        while ref[0] in redirect:
            ref = [*redirect[ref[0]][:3], *ref[3:]]
        return ref

    kept = []
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name in dropped:
            continue
        entry["inbound_nodes"] = [[resolved(ref) for ref in node] for node in entry["inbound_nodes"]]
        sources = [ref[0] for node in entry["inbound_nodes"] for ref in node]
        if _plain_relu(entry) and len(sources) == 1 and _plain_relu(entries[sources[0]]):
            redirect[name] = entry["inbound_nodes"][0][0]
            continue
        kept.append(entry)
    config["layers"] = kept
    config["output_layers"] = [resolved(ref) for ref in config["output_layers"]]
    custom = {type(layer).__name__: type(layer) for layer in model.layers}  # the user's own layer classes
    new = keras.Model.from_config(config, custom_objects=custom)
    for layer in new.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return new
