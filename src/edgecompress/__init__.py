"""edgecompress: train, compress, convert and measure image classifiers for edge devices.

Importing the package imports no TensorFlow; modules that need it import `edgecompress.core.backend`.
"""
