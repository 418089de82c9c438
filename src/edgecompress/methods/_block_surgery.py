"""Residual block removal by model surgery: a block's branch goes, and what read its Add reads its shortcut.

A block is an Add of two chains of layers from one tensor, each layer with one input and one output that the next
reads alone (the basic and bottleneck blocks of He et al., MobileNetV2's inverted residuals); the shorter chain is
its shortcut, the identity or a 1x1 projection where the block strides or widens, the other its branch. Without
the block, what read the Add reads the shortcut: the block's input, or the projection's output.
"""
from dataclasses import dataclass

from edgecompress.core.backend import keras, tf
from edgecompress.methods._graph import edited_nodes, rebuilt, refs, tensor_key, with_weights_of

layers = keras.layers


@dataclass(frozen=True)
class Block:
    """A residual block: its Add layer, which of the Add's two inputs is the shortcut, and the layers of its branch
    (removed with it) and of its shortcut (none for the identity), each last layer first."""
    add: str
    shortcut_input: int
    branch: tuple
    projection: tuple


def _uses(model) -> dict:
    """How many layer calls read each (layer, node, tensor), a model output counting as one."""
    uses = {}
    read = [t for layer in model.layers for node in layer._inbound_nodes for t in node.keras_inputs]
    for tensor in read + list(model.outputs):
        uses[tensor_key(tensor)] = uses.get(tensor_key(tensor), 0) + 1
    return uses


def _chain(tensor, uses) -> tuple:
    """(the layers back from `tensor` while each has one call, one input and one output, which is read once, last
    first; the key of the tensor where that stops)."""
    path = []
    while uses.get(tensor_key(tensor)) == 1:
        layer = tensor._keras_history.layer
        nodes = layer._inbound_nodes
        if len(nodes) != 1 or len(nodes[0].keras_inputs) != 1 or len(tf.nest.flatten(nodes[0].outputs)) != 1:
            break
        path.append(layer.name)
        tensor = nodes[0].keras_inputs[0]
    return tuple(path), tensor_key(tensor)


def residual_blocks(model) -> list:
    """The model's residual blocks, in the order of their Add layers."""
    uses, blocks = _uses(model), []
    for layer in model.layers:
        if not isinstance(layer, layers.Add) or len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].keras_inputs
        if len(inputs) != 2:
            continue
        (first, start), (second, end) = (_chain(tensor, uses) for tensor in inputs)
        if start == end and len(first) != len(second):
            shortcut = 0 if len(first) < len(second) else 1
            blocks.append(Block(layer.name, shortcut, (first, second)[1 - shortcut], (first, second)[shortcut]))
    return blocks


def _plain_relu(entry: dict) -> bool:
    config = entry["config"]
    return (entry["class_name"] == "ReLU" and config.get("max_value") is None and not config.get("negative_slope")
            and not config.get("threshold"))


def remove_blocks(model, blocks) -> keras.Model:
    """A new functional model without `blocks` (of `residual_blocks(model)`); every other layer keeps its weights.

    A plain ReLU that comes to read another plain ReLU's output, as the ReLU after a removed identity block's Add
    does, goes with it: it would change nothing.
    """
    dropped = {name for block in blocks for name in (block.add, *block.branch)}

    def edit(config):
        entries = {entry["config"]["name"]: entry for entry in config["layers"]}
        redirect = {block.add: entries[block.add]["inbound_nodes"][0][block.shortcut_input] for block in blocks}

        def resolved(ref):
            while ref[0] in redirect:
                ref = [*redirect[ref[0]][:3], *ref[3:]]
            return ref

        kept = []
        for entry in config["layers"]:
            if entry["config"]["name"] in dropped:
                continue
            before = entry["inbound_nodes"]
            entry["inbound_nodes"] = edited_nodes(entry, resolved)
            sources = refs(entry)
            if (_plain_relu(entry) and entry["inbound_nodes"] != before and len(sources) == 1
                    and _plain_relu(entries[sources[0][0]])):
                redirect[entry["config"]["name"]] = sources[0]
                continue
            kept.append(entry)
        return {**config, "layers": kept, "output_layers": [resolved(ref) for ref in config["output_layers"]]}

    return with_weights_of(rebuilt(model, edit), model)
