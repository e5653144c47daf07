"""The device a process trains on: memory growth on any visible GPU (TensorFlow would otherwise
take all of the card's memory at start-up), and the device's name for the manifests.

``setup_gpu`` must run before TensorFlow first places an op (before any model is built): a
stage calls it where it sets TensorFlow up. Without a GPU (or without TensorFlow's CUDA build,
``pip install 'worldmodels[gpu]'``) both are harmless and the device is "CPU"."""

from __future__ import annotations

import os
import sys


def start_tensorflow() -> None:
    """Import TensorFlow in this process (once) and set up any GPU (``setup_gpu``), its
    start-up lines (oneDNN, cuInit, CPU features), which it prints whatever the log level,
    kept out of the terminal; anything else it prints is let through."""
    import sys

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels.core.workers import quiet_startup

    with quiet_startup(True):
        import tensorflow  # noqa: F401

        setup_gpu()


def setup_gpu() -> list[str]:
    """Enable memory growth on every visible GPU; returns their names (none on a CPU)."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # also for devices set up later
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # TensorFlow already placed ops (tests run stages in one process)
    return [gpu.name for gpu in gpus]


def device_name() -> str:
    """Where TensorFlow computes in this process: "CPU", or "GPU:0 <name>" for the first GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 {details.get('device_name', 'unknown')}".strip()


def loaded_device_name() -> str | None:
    """``device_name()`` if this process has loaded TensorFlow (it ran a model), else None:
    recording the device never imports TensorFlow into a stage that does not use it."""
    return device_name() if "tensorflow" in sys.modules else None
