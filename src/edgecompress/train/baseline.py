"""The baseline that train.architecture names: a registry architecture, untrained or from a weights file, or the
user's own trained Keras model, loaded safely, checked against the prepared data and given the head every stage
expects (a separate final softmax whose input is the logits)."""
import json
import re
import warnings
import zipfile
from pathlib import Path

import h5py

from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.train.models import build, is_softmax
from edgecompress.core.names import NO_FILE, OWN_MODEL
from tf_keras.src.saving.serialization_lib import SafeModeScope  # after backend: it selects tf_keras

KEY = "train.model_file"
FORMATS = "a .keras file, an .h5 file or a SavedModel folder"
# how Keras names a class it cannot find, by format (.h5, .keras layer, .keras model)
UNREGISTERED = re.compile(r"Unknown layer: '(\w+)'|Cannot deserialize object of type `(\w+)`|"
                          r"Could not locate class '(\w+)'")
REVIVED = "tf_keras.src.saving.legacy.saved_model.load"  # where Keras makes up classes for unregistered ones


def create(train_cfg: dict, dataset_card: dict):
    """(model, facts for its record): the user's model or the registry architecture that train.architecture names.

    The user's model is loaded safely and checked against the prepared data; a registry model is untrained, or
    starts from the layers of train.weights that match.
    """
    shape, classes, name = dataset_card["image_shape"], len(dataset_card["classes"]), train_cfg["architecture"]
    if name == OWN_MODEL:
        path = train_cfg["model_file"]
        model = load(path, train_cfg["trust_model_code"])
        check_contract(model, path, shape, classes)
        return as_baseline(model, shape), {"architecture": path}
    model = build(name, shape, classes, train_cfg["width"])
    if train_cfg["weights"] == NO_FILE:
        return model, {"architecture": name}
    loaded = load_initial_weights(model, train_cfg["weights"])
    return model, {"architecture": name, "initial_weights": train_cfg["weights"], "initial_weight_layers": loaded}


def load_initial_weights(model, path) -> int:
    """Copy into `model` the weights of every layer of the .h5 weights file at `path` whose name and shapes match
    (a backbone's ImageNet file, another run's weights); return how many layers took weights."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".h5":
        raise UserError(f"params: train.weights = {str(path)!r} is not an .h5 weights file; expected an existing "
                        "file saved by Keras (save_weights or a keras.applications download) ending in .h5")
    before = [layer.get_weights() for layer in model.layers]
    try:
        model.load_weights(path, by_name=True, skip_mismatch=True)
    except Exception as err:  # h5py and Keras raise OSError, ValueError, KeyError for files they cannot read
        raise UserError(f"params: train.weights: {path} could not be read as Keras weights ({err})") from None
    loaded = sum(any((a != b).any() for a, b in zip(old, layer.get_weights()))
                 for old, layer in zip(before, model.layers))
    if loaded == 0:
        raise UserError(f"params: train.weights: no layer of {model.name} matches a layer of {path} by name and "
                        "shape; expected weights saved from the same architecture and width")
    return loaded


def load(path, trust_code: bool = False) -> keras.Model:
    """The functional Keras model saved at `path`; in safe mode (the default) no Lambda layer's code is loaded."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{KEY}: {path} does not exist; expected {FORMATS}")
    if path.suffix not in (".keras", ".h5") and not (path / "saved_model.pb").is_file():
        raise UserError(f"{KEY}: {path} is not {FORMATS}")
    try:
        # the .keras loader honours safe_mode, the .h5 one only the scope; Keras' own warnings make way for ours
        with SafeModeScope(not trust_code), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as err:  # Keras raises ValueError, TypeError, OSError... for files it cannot read
        raise UserError(_load_fault(path, err)) from None
    _check_loadable_layers(path, model, trust_code)
    return model


def _load_fault(path, err) -> str:
    message = str(err)
    if "Lambda layer" in message:
        return _lambda_fault(path)
    unregistered = UNREGISTERED.search(message)
    if unregistered:
        return _custom_fault(path, next(name for name in unregistered.groups() if name))
    unknown = [name for name in _class_names(path) if not _is_known(name)]
    if unknown:
        return _custom_fault(path, unknown[0])
    first_line = message.strip().splitlines()[0] if message.strip() else type(err).__name__
    return f"{KEY}: {path} could not be loaded as a Keras model ({first_line[:200]}); expected {FORMATS}"


def _class_names(path) -> list:
    """Every class_name in the model config of a .keras or .h5 file (nested models included); [] if unreadable."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        else:
            with h5py.File(path, "r") as h5:
                config = json.loads(h5.attrs["model_config"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    names, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names += [node["class_name"]] if isinstance(node.get("class_name"), str) else []
            stack += node.values()
        elif isinstance(node, list):
            stack += node
    return names


def _is_known(class_name: str) -> bool:
    return (hasattr(keras.layers, class_name) or hasattr(keras.models, class_name) or class_name == "Functional"
            or keras.utils.get_registered_object(class_name) is not None or "." in class_name
            or hasattr(keras.initializers, class_name) or hasattr(keras.regularizers, class_name)
            or hasattr(keras.constraints, class_name))


def _lambda_fault(path) -> str:
    return (f"{KEY}: {path} has a Lambda layer, whose Python code safe loading does not run; set "
            "train.trust_model_code: true if you trust the file's author")


def _custom_fault(path, name: str) -> str:
    return (f"{KEY}: {path} uses the custom class {name!r}, which is not registered; edgecompress loads models "
            "built from Keras' own layers (a subclassed model: save it built with the functional API)")


def _check_loadable_layers(path, model, trust_code: bool) -> None:
    if not getattr(model, "_is_graph_network", False):
        raise UserError(f"{KEY}: {path} is a subclassed model ({type(model).__name__}), which TFMOT cannot clone; "
                        "save it as a functional model (keras.Model(inputs, outputs)) instead")
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Lambda" and not trust_code:  # a SavedModel revives it under its own name when unsafe
            raise UserError(_lambda_fault(path))
        if type(layer).__module__ == REVIVED:
            raise UserError(_custom_fault(path, kind))


def check_contract(model, path, image_shape, num_classes: int) -> None:
    """The model takes the prepared images (or any size) and gives one score per class of the data."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"{KEY}: {path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; expected "
                        "one image input and one output of class scores")
    shape, expected = tuple(model.inputs[0].shape[1:]), tuple(image_shape)
    if len(shape) != 3 or any(size is not None and size != want for size, want in zip(shape, expected)):
        raise UserError(f"{KEY}: {path} takes inputs of shape {shape}; the prepared images are {expected} "
                        "(data.image_size x data.image_size x data.channels)")
    outputs = tuple(model.outputs[0].shape[1:])
    if outputs != (num_classes,):
        raise UserError(f"{KEY}: {path} gives outputs of shape {outputs}; the prepared data has {num_classes} "
                        "classes (data/dataset.json)")


def as_baseline(model, image_shape) -> keras.Model:
    """`model` with a fixed input of `image_shape` and a separate final softmax whose input is its logits.

    A model that ends in a softmax keeps it (a softmax inside its last layer is split off that layer); a model
    that ends without one is taken to output logits, and gets one.
    """
    if any(size is None for size in model.inputs[0].shape[1:]):
        fixed = keras.models.clone_model(model, input_tensors=keras.Input(shape=tuple(image_shape), name="image"))
        fixed.set_weights(model.get_weights())
        model = fixed
    last = model.layers[-1]
    if is_softmax(last):
        return model
    if getattr(getattr(last, "activation", None), "__name__", None) == "softmax":
        linear = type(last).from_config({**last.get_config(), "activation": "linear"})
        logits = linear(last.input)
        linear.set_weights(last.get_weights())
    else:
        logits = model.outputs[0]
    taken = {layer.name for layer in model.layers}
    name = "softmax" if "softmax" not in taken else f"{model.name}_softmax"
    probabilities = keras.layers.Activation("softmax", name=name)(logits)
    return keras.Model(model.inputs, probabilities, name=model.name)
