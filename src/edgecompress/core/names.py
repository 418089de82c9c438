"""Names and constants shared by the library, the stages and the tests, defined once. Imports no TensorFlow."""

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8")  # TF Lite variants, in report order
QAT_QUANTIZATION = "int8"  # what a quantization-aware trained model converts to
TFLM_FOLDER = "tflm"  # in a model's tflite folder: the variants only TensorFlow Lite Micro runs (LiteRT has no DECODE)
LUT_VARIANT = "int8_lut"  # the int8 file with its kernels stored as look-up tables (TFLM's compressor)
TFLM_ONLY = {LUT_VARIANT: "int8"}  # each variant only TFLM runs, and the variant it is made from
OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("none", "mirrored", "multi_worker")  # train.distribute: one device, local GPUs, TF_CONFIG's workers
SHUFFLE_MB = 256  # training shuffle buffer: a whole split up to this size (the digits: all of it), else a window
MIXED_PRECISION = "mixed_float16"  # the Keras dtype policy of train.mixed_precision: true
ARCHITECTURES = ("resnet18", "resnet20", "resnet32", "resnet56", "vgg16", "mobilenet", "mobilenetv2",
                 "mobilenetv3small", "mobilenetv3large", "wrn16_4")
OWN_MODEL = "file"  # train.architecture for the user's own model (train.model_file)
NO_DATA = "datasets"  # the shipped placeholder folder that data.path and data.test_path name by default
NO_FILE = "imports"  # the shipped placeholder folder that train.model_file and train.weights name when unused
INPUT_RANGES = ([0, 1], [0, 255], [-1, 1])  # what a model's float pixels span (train.input_range)
MIN_IMAGE_SIZE = 32  # ResNet18 and MobileNetV2 downsample by 2**5: smaller inputs vanish before the head
CURVE_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")  # what every training stage records
