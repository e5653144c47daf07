"""How a controller is judged: C's fitness in the dream and in the real env (``scorers``),
`evaluate` (``evaluation``), dream against real (``compare``, ``temperatures``), how well the
dream predicts (``fidelity``), which checkpoint to keep (``selection``) and whether the dream
orders controllers as the real env does (``resolution``)."""
