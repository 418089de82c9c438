"""What the model surgeries share: a tensor's place in a functional graph, and a model rebuilt from edited config."""
from edgecompress.core.backend import keras


def tensor_key(tensor) -> tuple:
    """(layer name, node index, tensor index) of a functional model's tensor."""
    history = tensor._keras_history
    return history.layer.name, history.node_index, history.tensor_index


def functional(model) -> keras.Model:
    """`model` as a functional model: a Sequential one wrapped, sharing its layers."""
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def rebuilt(model, edit) -> keras.Model:
    """A new functional model from `model`'s config as `edit(config)` returns it (a Sequential model is made
    functional first; the user's own layer classes are known); the caller copies the weights in."""
    model = functional(model)
    custom = {type(layer).__name__: type(layer) for layer in model.layers}
    return keras.Model.from_config(edit(model.get_config()), custom_objects=custom)
