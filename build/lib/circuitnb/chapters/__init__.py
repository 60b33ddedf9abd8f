"""One module per book chapter: the computations behind every number a chapter shows."""
