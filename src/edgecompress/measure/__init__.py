"""Measurement without TensorFlow: every .tflite run on the test split here (LiteRT) or on a device over SSH."""
