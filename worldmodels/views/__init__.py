"""What a person looks at: the experiment's report (``report``), V's and M's view of an
episode (``show``), a video of the agent (``enjoy``) and the table of every run (``runs``)."""
