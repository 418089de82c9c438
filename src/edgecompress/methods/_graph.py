"""What the model surgeries share: a tensor's place in a functional graph, and a model rebuilt from edited config."""
from edgecompress.core.backend import keras


def tensor_key(tensor) -> tuple:
    """(layer name, node index, tensor index) of a functional model's tensor."""
    history = tensor._keras_history
    return history.layer.name, history.node_index, history.tensor_index


def _flat(node) -> bool:
    """Whether an inbound node of a functional config is one flat ref: a TFOpLambda layer's (an operator applied to a
    Keras tensor, `x * 2.0`), where other layers list their refs."""
    return bool(node) and isinstance(node[0], str)


def refs(entry: dict) -> list:
    """The [layer, node, tensor, kwargs] refs that a functional config's layer `entry` reads."""
    return [ref for node in entry["inbound_nodes"] for ref in ([node] if _flat(node) else node)]


def edited_nodes(entry: dict, edit) -> list:
    """`entry`'s inbound nodes with `edit(ref)` applied to each ref, each node kept in its own shape."""
    return [edit(node) if _flat(node) else [edit(ref) for ref in node] for node in entry["inbound_nodes"]]


def functional(model) -> keras.Model:
    """`model` as a functional model: a Sequential one wrapped, sharing its layers."""
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def with_weights_of(new, model) -> keras.Model:
    """`new` with every layer that holds weights given those of `model`'s layer of its name; returns `new`."""
    for layer in new.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new


def rebuilt(model, edit) -> keras.Model:
    """A new functional model from `model`'s config as `edit(config)` returns it (a Sequential model is made
    functional first; the user's own layer classes are known); the caller copies the weights in (with_weights_of
    where every layer keeps its own)."""
    model = functional(model)
    custom = {type(layer).__name__: type(layer) for layer in model.layers}
    return keras.Model.from_config(edit(model.get_config()), custom_objects=custom)
