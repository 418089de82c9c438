"""Filter (channel) pruning by model surgery: score whole filters, then rebuild a smaller model without them.

Channels are followed through the graph in groups. A convolution or Dense layer starts a group (its output
channels); a layer that works on each channel alone (BatchNorm, activations, pooling, depthwise convolutions)
passes its input's group on; an elementwise merge (Add, Multiply, ...) joins its inputs' groups into one, so
the channels a residual add ties together are pruned as one group with the same indices. A group is left whole
where it feeds a layer this module cannot follow, is a model input or output, or has a layer in skip_layers.
"""
from dataclasses import dataclass, field

import numpy as np

from edgecompress.core.backend import keras, tf
from edgecompress.core.errors import UserError
from edgecompress.methods._graph import tensor_key

layers = keras.layers
PER_CHANNEL = (layers.BatchNormalization, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.Dropout,
               layers.SpatialDropout2D, layers.GaussianNoise, layers.MaxPooling2D, layers.AveragePooling2D,
               layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.ZeroPadding2D, layers.Cropping2D,
               layers.UpSampling2D, layers.Resizing)
MERGES = (layers.Add, layers.Subtract, layers.Multiply, layers.Maximum, layers.Minimum, layers.Average)


@dataclass
class Group:
    """Channels pruned together: the layers that produce them and, if it must stay whole, why."""
    size: int
    producers: list = field(default_factory=list)
    whole: str = None
    keep: np.ndarray = None


def _role(layer) -> str:
    """How `layer` treats channels: produce (new channels), channel (each alone), merge, or other."""
    if isinstance(layer, layers.DepthwiseConv2D):
        return "channel" if layer.depth_multiplier == 1 else "other"
    if isinstance(layer, layers.SeparableConv2D) or isinstance(layer, layers.Dense):
        return "produce"
    if isinstance(layer, layers.Conv2D):
        return "produce" if layer.groups == 1 and not isinstance(layer, layers.Conv2DTranspose) else "other"
    if isinstance(layer, layers.Activation):
        return "other" if layer.get_config()["activation"] == "softmax" else "channel"
    if isinstance(layer, layers.Rescaling):
        return "channel" if np.ndim(layer.scale) == 0 and np.ndim(layer.offset) == 0 else "other"
    if isinstance(layer, layers.BatchNormalization):
        return "channel" if len(layer.axis) == 1 and layer.axis[0] in (-1, len(layer.input_shape) - 1) else "other"
    if isinstance(layer, PER_CHANNEL):
        return "channel"
    return "merge" if isinstance(layer, MERGES) else "other"


class Plan:
    """The channel groups of a functional model and, per layer, the group of its input and of its output."""

    def __init__(self, model, skip=()):
        self.model, self.groups, self._parent = model, [], []
        self.inputs, self.outputs, self.sliced, self.unfollowed = {}, {}, set(), []
        tensors = {}  # (layer name, node index, output index) -> group id
        for layer in model.layers:
            nodes = layer._inbound_nodes  # one per call of the layer
            sources = [tensors[key] for node in nodes for key in map(tensor_key, node.keras_inputs) if key in tensors]
            outputs = [t for node in nodes for t in tf.nest.flatten(node.outputs)]
            role = _role(layer) if len(nodes) == 1 and len(outputs) == 1 else "other"
            if isinstance(layer, layers.InputLayer):
                produced = [self._new(outputs[0].shape[-1], whole="a model input")]
            elif role == "produce":
                produced = [self._new(outputs[0].shape[-1], [layer.name],
                                      "in skip_layers" if layer.name in skip else None)]
                self.inputs[layer.name] = sources[0]
            elif role == "channel":
                produced = sources[:1]
            elif role == "merge" and len({self.groups[self._find(s)].size for s in sources}) == 1:
                produced = [self._join(sources)]
            else:
                why = f"it feeds {layer.name} ({type(layer).__name__}), which filter pruning cannot follow"
                for source in sources:
                    self._leave_whole(source, why)
                if layer.weights:
                    self.unfollowed.append(f"{layer.name} ({type(layer).__name__})")
                produced = [self._new(t.shape[-1], whole=f"made by {layer.name}, which it cannot follow")
                            for t in outputs]
            if role in ("produce", "channel"):
                self.sliced.add(layer.name)
            for tensor, group in zip(outputs, produced):
                tensors[tensor_key(tensor)] = group
            self.outputs[layer.name] = produced[0]
        for tensor in model.outputs:
            self._leave_whole(tensors[tensor_key(tensor)], "it is a model output")

    def _new(self, size, producers=(), whole=None) -> int:
        self.groups.append(Group(int(size), list(producers), whole))
        self._parent.append(len(self._parent))
        return len(self._parent) - 1

    def _find(self, group: int) -> int:
        while self._parent[group] != group:
            group = self._parent[group]
        return group

    def _join(self, sources) -> int:
        root = self._find(sources[0])
        for other in map(self._find, sources[1:]):
            if other != root:
                self._parent[other] = root
                kept, merged = self.groups[root], self.groups[other]
                kept.producers += merged.producers
                kept.whole = kept.whole or merged.whole
        return root

    def _leave_whole(self, group: int, why: str) -> None:
        group = self.groups[self._find(group)]
        group.whole = group.whole or why

    def roots(self) -> list:
        """The distinct groups, each once."""
        return [self.groups[i] for i in sorted({self._find(i) for i in range(len(self.groups))})]

    def keep_of(self, group: int) -> np.ndarray:
        """Indices of the channels of `group` that stay."""
        root = self.groups[self._find(group)]
        return root.keep if root.keep is not None else np.arange(root.size)


def filter_matrix(layer) -> np.ndarray:
    """A producing layer's filters as rows: one per output channel, every weight that computes it."""
    kernel = (layer.pointwise_kernel if isinstance(layer, layers.SeparableConv2D) else layer.kernel).numpy()
    return kernel.reshape(-1, kernel.shape[-1]).T


def scores(filters: np.ndarray, criterion: str) -> np.ndarray:
    """Per filter (row): the lower, the sooner it is removed.

    fpgm: the summed distance to every other filter, lowest nearest the geometric median, whose work the others
    can take over (He et al. 2019); l1 / l2: the filter's norm.
    """
    if criterion == "l1":
        return np.abs(filters).sum(axis=1)
    if criterion == "l2":
        return np.sqrt((filters**2).sum(axis=1))
    squared = (filters**2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * filters @ filters.T, 0))
    return distances.sum(axis=1)


def choose(plan: Plan, criterion: str, ratio: float) -> None:
    """Set `keep` of every group that may be pruned: all but round(size * ratio) filters, lowest scores removed.

    A group's filters are scored on the rows of all its producers side by side.
    """
    for group in plan.roots():
        if group.whole or not group.producers:
            continue
        removed = int(round(group.size * ratio))
        if removed >= group.size:
            raise UserError(f"params: filter_prune.ratio = {ratio} is not allowed; it would leave "
                            f"{group.producers[0]} with no filter of its {group.size}; expected a ratio below "
                            f"{(group.size - 0.5) / group.size:.3f}")
        filters = np.concatenate([filter_matrix(plan.model.get_layer(name)) for name in group.producers], axis=1)
        order = np.argsort(scores(filters, criterion), kind="stable")
        group.keep = np.sort(order[removed:])


def _slice(layer, keep_in, keep_out) -> list:
    """`layer`'s weights with only the kept input and output channels."""
    weights = layer.get_weights()
    if isinstance(layer, layers.SeparableConv2D):
        depthwise, pointwise, *bias = weights
        m = layer.depth_multiplier
        expanded = (keep_in[:, None] * m + np.arange(m)).ravel()
        return [depthwise[:, :, keep_in], pointwise[:, :, expanded][..., keep_out], *(b[keep_out] for b in bias)]
    if isinstance(layer, layers.Dense):
        kernel, *bias = weights
        return [kernel[keep_in][:, keep_out], *(b[keep_out] for b in bias)]
    if isinstance(layer, layers.DepthwiseConv2D):
        kernel, *bias = weights
        return [kernel[:, :, keep_in], *(b[keep_in] for b in bias)]
    if isinstance(layer, layers.Conv2D):
        kernel, *bias = weights
        return [kernel[:, :, keep_in][..., keep_out], *(b[keep_out] for b in bias)]
    if isinstance(layer, layers.BatchNormalization):
        return [w[keep_in] for w in weights]
    return weights


def shrink(plan: Plan) -> keras.Model:
    """A new functional model without the channels the plan removes, the kept weights copied in."""
    def smaller(layer):
        config = layer.get_config()
        if layer.name in plan.inputs:
            config["units" if isinstance(layer, layers.Dense) else "filters"] = len(
                plan.keep_of(plan.outputs[layer.name]))
        return layer.__class__.from_config(config)

    model = keras.models.clone_model(plan.model, clone_function=smaller)
    for layer in plan.model.layers:
        if layer.name in plan.sliced and layer.weights:
            keep_in = plan.keep_of(plan.inputs.get(layer.name, plan.outputs[layer.name]))
            model.get_layer(layer.name).set_weights(_slice(layer, keep_in, plan.keep_of(plan.outputs[layer.name])))
    return model


def prune_filters(model, criterion: str, ratio: float, skip=()) -> tuple:
    """(the smaller model, its plan): `ratio` of the filters of every group that may be pruned, by `criterion`."""
    plan = Plan(model, skip)
    choose(plan, criterion, ratio)
    return shrink(plan), plan
