"""The data: rollouts collected in the real env (``collect``), the HDF5 store of episodes and
of V's codes (``store``), and the background reader that feeds training (``prefetch``)."""
