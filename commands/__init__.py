"""Click commands, one per stage; they parse options, call worldmodels, and print paths."""
