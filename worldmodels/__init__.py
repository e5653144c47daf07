"""World Models (Ha & Schmidhuber, 2018) on gymnasium CarRacing-v3.

V (ConvVAE), M (MDN-RNN with reward and done heads) and C (linear controller evolved with
CMA-ES inside M's dream). Importing this package does not import TensorFlow.
"""

__version__ = "0.1.0"
