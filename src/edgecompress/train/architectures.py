"""The architecture registry: each builder turns an input tensor into pooled features, channels scaled by `width`.

ResNet18 with the ImageNet stem (paper 000); the CIFAR ResNets 20 / 32 / 56 (three stages of basic blocks at
16-32-64 channels, paper 004); VGG16 with BatchNorm and a small head (paper 001); MobileNet v1 / v2 / v3 from
keras.applications, untrained, `width` as their alpha, and WRN-16-4 (paper 003). models.build adds the head.
"""
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.core.names import ARCHITECTURES

layers = keras.layers
RESNET18_STAGES = (2, 2, 2, 2)
MOBILENET_BN_MOMENTUM = 0.9  # ImageNet's 0.999 leaves its 52 BatchNorms' moving statistics stale for many epochs
VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convolutions) before each pooling
VGG16_HEAD = 512
ONEDNN_1X1_MIN_CHANNELS = 16  # below this, a strided 1x1 convolution's weight gradient corrupts memory on oneDNN


def channels(base: int, width: float, architecture: str) -> int:
    """`base` channels scaled by `width`; a width that leaves a layer no channel is refused."""
    scaled = int(round(base * width))
    if scaled < 1:
        raise UserError(f"params: width {width} gives {architecture} a layer of {base} x {width} = 0 channels; "
                        f"expected a width of at least {0.5 / base:g}")
    return scaled


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _projection_input(x, stride: int, name: str):
    """(input, stride) for a 1x1 projection shortcut: with few channels, `x` subsampled here and stride 1 left.

    Both compute the same function. oneDNN's weight gradient of a strided 1x1 convolution with fewer input channels
    than its block (16 with AVX-512) writes past its buffer and aborts training with heap corruption on odd batch
    sizes (oneDNN issue 6035; a CIFAR ResNet at width 0.5 has 8 channels in stage 1).
    """
    if stride == 1 or x.shape[-1] >= ONEDNN_1X1_MIN_CHANNELS:
        return x, stride
    return layers.MaxPooling2D(1, strides=stride, padding="same", name=f"{name}_subsample")(x), 1


def _basic_block(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        projected, projection_stride = _projection_input(x, stride, f"{name}_down")
        shortcut = _conv_bn(projected, filters, 1, projection_stride, f"{name}_down", relu=False)
    x = _conv_bn(x, filters, 3, stride, f"{name}_a")
    x = _conv_bn(x, filters, 3, 1, f"{name}_b", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet18(x, width: float = 1.0):
    """ResNet18 features as in He et al. (ImageNet stem), channels scaled by `width`, globally pooled."""
    channels = [max(8, int(round(64 * width * 2**i))) for i in range(4)]
    x = _conv_bn(x, channels[0], 7, 2, "stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (filters, blocks) in enumerate(zip(channels, RESNET18_STAGES)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, f"stage{stage + 1}_block{block + 1}")
    return layers.GlobalAveragePooling2D(name="gap")(x)


def _cifar_resnet(x, width: float, depth: int, name: str):
    """He et al.'s CIFAR ResNet: a 3x3 stem, (depth - 2) / 6 basic blocks at 16, 32 and 64 channels, pooled."""
    blocks = (depth - 2) // 6
    widths = [channels(16 * 2**i, width, name) for i in range(3)]
    x = _conv_bn(x, widths[0], 3, 1, "stem")
    for stage, filters in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, f"stage{stage + 1}_block{block + 1}")
    return layers.GlobalAveragePooling2D(name="gap")(x)


def resnet20(x, width: float = 1.0):
    return _cifar_resnet(x, width, 20, "resnet20")


def resnet32(x, width: float = 1.0):
    return _cifar_resnet(x, width, 32, "resnet32")


def resnet56(x, width: float = 1.0):
    return _cifar_resnet(x, width, 56, "resnet56")


def vgg16(x, width: float = 1.0):
    """VGG16 as trained on CIFAR: 13 3x3 convolutions with BatchNorm in five pooled stages, a small dense head."""
    for stage, (filters, convs) in enumerate(VGG16_STAGES):
        for conv in range(convs):
            x = _conv_bn(x, channels(filters, width, "vgg16"), 3, 1, f"stage{stage + 1}_conv{conv + 1}")
        x = layers.MaxPooling2D(2, padding="same", name=f"stage{stage + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(channels(VGG16_HEAD, width, "vgg16"), activation="relu", name="head_dense")(x)
    return layers.Dropout(0.5, name="head_dropout")(x)


def _pre_activation_block(x, filters, stride, name):
    """Zagoruyko & Komodakis' wide basic block: BN-ReLU-conv twice, a 1x1 projection where the shape changes."""
    y = layers.ReLU(name=f"{name}_relu1")(layers.BatchNormalization(name=f"{name}_bn1")(x))
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        projected, projection_stride = _projection_input(y, stride, f"{name}_down")
        shortcut = layers.Conv2D(filters, 1, strides=projection_stride, use_bias=False, name=f"{name}_down_conv")(
            projected)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_a_conv")(y)
    y = layers.ReLU(name=f"{name}_relu2")(layers.BatchNormalization(name=f"{name}_bn2")(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def wrn16_4(x, width: float = 1.0):
    """WRN-16-4: a 3x3 stem, two wide blocks per stage at 64, 128 and 256 channels (16-32-64 widened 4x)."""
    widths = [channels(16 * 4 * 2**i, width, "wrn16_4") for i in range(3)]
    x = layers.Conv2D(channels(16, width, "wrn16_4"), 3, padding="same", use_bias=False, name="stem_conv")(x)
    for stage, filters in enumerate(widths):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _pre_activation_block(x, filters, stride, f"stage{stage + 1}_block{block + 1}")
    x = layers.ReLU(name="final_relu")(layers.BatchNormalization(name="final_bn")(x))
    return layers.GlobalAveragePooling2D(name="gap")(x)


def _application(constructor, x, width: float, **options):
    """A keras.applications backbone, untrained, `width` as its alpha, globally pooled; faster BatchNorm statistics."""
    backbone = constructor(input_tensor=x, alpha=width, include_top=False, weights=None, pooling="avg", **options)
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = MOBILENET_BN_MOMENTUM
    return backbone.output


def mobilenet(x, width: float = 1.0):
    return _application(keras.applications.MobileNet, x, width)


def mobilenetv2(x, width: float = 1.0):
    return _application(keras.applications.MobileNetV2, x, width)


def mobilenetv3small(x, width: float = 1.0):  # pixels arrive in [0, 1]: no built-in rescaling
    return _application(keras.applications.MobileNetV3Small, x, width, include_preprocessing=False)


def mobilenetv3large(x, width: float = 1.0):
    return _application(keras.applications.MobileNetV3Large, x, width, include_preprocessing=False)


BUILDERS = {name: globals()[name] for name in ARCHITECTURES}  # each architecture's builder is named after it
