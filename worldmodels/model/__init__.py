"""The model: V (``vae``), M (``rnn``), C (``controller``), the dream M runs C in (``dream``),
V + M + C acting in a real env (``agent``), a trained world read from its stages (``world``),
CMA-ES (``evolution``) and the resumable epoch loop V and M share (``training``)."""
