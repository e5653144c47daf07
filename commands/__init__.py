"""Click commands, one per stage; they parse options, call one function of worldmodels.stages,
and print what it wrote. Installed as ``worldmodels_cli`` (setup.cfg), not as ``commands``."""
