"""Low-rank factorization (paper 002): a Dense or Conv2D kernel replaced by two thinner layers from its truncated SVD.

A k x k convolution from `in` to `out` channels becomes a k x k convolution to `rank` channels (the "basis") followed
by a 1 x 1 convolution to `out` that keeps the layer's name, bias and activation; a Dense layer becomes two Dense
layers the same way. The kernel reshaped to (k*k*in, out) is U S Vᵀ: the basis takes U √S, the second layer √S Vᵀ.
"""
import copy
import math

import numpy as np

from edgecompress.core.backend import keras
from edgecompress.methods._graph import rebuilt

layers = keras.layers
ENERGY_TOLERANCE = 1e-6  # float rounding: a kept share this close to `energy` reaches it (energy 1.0: full rank)
BASIS_SUFFIX = "_basis"  # the name of the thin first layer: <layer>_basis


def factorizable(layer) -> bool:
    """Dense and (ungrouped, channels-last) Conv2D layers called once: subclasses such as depthwise convolutions,
    and layers shared between several calls, are not."""
    if len(layer.inbound_nodes) != 1:
        return False
    if type(layer) is layers.Dense:
        return True
    return type(layer) is layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"


def kernel_matrix(layer) -> np.ndarray:
    """The layer's kernel as a (k*k*in, out) matrix (a Dense kernel as it is)."""
    kernel = layer.get_weights()[0]
    return kernel.reshape(-1, kernel.shape[-1])


def rank_for_energy(singular_values, energy: float) -> int:
    """The fewest singular values whose squares keep at least `energy` of the sum of all squares."""
    squares = np.asarray(singular_values, dtype=np.float64) ** 2
    if squares.sum() == 0:
        return 1
    kept = np.cumsum(squares) / squares.sum()
    return int(min(np.searchsorted(kept, energy - ENERGY_TOLERANCE) + 1, len(squares)))


def rank_for_ratio(full_rank: int, rank_ratio: float) -> int:
    """`rank_ratio` of the full rank, rounded up: at least 1."""
    return max(1, math.ceil(rank_ratio * full_rank))


def factorized_parameters(rows: int, columns: int, rank: int) -> int:
    """Kernel weights of the two layers that replace a (rows, columns) kernel at `rank`."""
    return rank * (rows + columns)


def choose_ranks(model, names, energy=None, rank_ratio=None) -> list:
    """Per layer of `names`: its kernel's shape, the rank that `energy` (or `rank_ratio`) picks, the energy that rank
    keeps, and whether factorizing lowers its parameters (only then is it factorized)."""
    choices = []
    for name in names:
        matrix = kernel_matrix(model.get_layer(name))
        singular_values = np.linalg.svd(matrix, compute_uv=False)
        full = len(singular_values)
        rank = rank_for_energy(singular_values, energy) if energy is not None else rank_for_ratio(full, rank_ratio)
        squares = singular_values.astype(np.float64) ** 2
        kept = float(squares[:rank].sum() / squares.sum()) if squares.sum() else 1.0
        rows, columns = matrix.shape
        choices.append({"layer": name, "kernel": [rows, columns], "rank": rank, "full_rank": full,
                        "energy_kept": round(kept, 6),
                        "factorized": factorized_parameters(rows, columns, rank) < rows * columns})
    return choices


def factors(matrix: np.ndarray, rank: int) -> tuple:
    """(basis, projection) of shapes (rows, rank) and (rank, columns) whose product is `matrix` truncated to `rank`."""
    u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(matrix.dtype), (root[:, None] * vt[:rank]).astype(matrix.dtype)


def _split_config(entry: dict, rank: int) -> tuple:
    """The functional-config entries of the basis layer and of the layer after it, which keeps the name."""
    name = entry["config"]["name"]
    basis, head = copy.deepcopy(entry), copy.deepcopy(entry)
    for part in (basis, head):
        part.pop("build_config", None)  # the input shape changes: each layer builds on the tensor it receives
    basis["name"] = basis["config"]["name"] = name + BASIS_SUFFIX
    basis["config"].update(use_bias=False, activation="linear", activity_regularizer=None)
    basis["config"]["units" if entry["class_name"] == "Dense" else "filters"] = rank
    if entry["class_name"] == "Conv2D":
        head["config"].update(kernel_size=[1, 1], strides=[1, 1], padding="valid", dilation_rate=[1, 1])
    head["inbound_nodes"] = [[[basis["name"], 0, 0, {}]]]
    return basis, head


def factorize(model, ranks: dict) -> keras.Model:
    """A new functional model in which each layer named in `ranks` ({name: rank}) is split in two by its truncated
    SVD; every other layer keeps its weights."""
    def split(config):
        entries = []
        for entry in config["layers"]:
            name = entry["config"]["name"]
            entries += _split_config(entry, ranks[name]) if name in ranks else [entry]
        return {**config, "layers": entries}

    new = rebuilt(model, split)
    for layer in model.layers:
        weights = layer.get_weights()
        if layer.name in ranks:
            basis, projection = factors(kernel_matrix(layer), ranks[layer.name])
            kernel_shape = weights[0].shape
            new.get_layer(layer.name + BASIS_SUFFIX).set_weights([basis.reshape(*kernel_shape[:-1], -1)])
            head_shape = (projection.shape[0], kernel_shape[-1]) if len(kernel_shape) == 2 else (1, 1, *projection.shape)
            weights = [projection.reshape(head_shape), *weights[1:]]
        new.get_layer(layer.name).set_weights(weights)
    return new
