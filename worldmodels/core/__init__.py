"""The machinery every wing stands on: files written atomically and read with suspicion
(``artifacts``, ``checkpoint``, ``bundle``, ``experiment``), worker processes and the Ray backend
(``workers``, ``tasks``, ``ray_backend``), the device (``device``), and what makes a run
visible (``tensorboard``, ``figures``). Nothing here knows V, M or C."""
