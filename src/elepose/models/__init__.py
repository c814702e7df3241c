"""Networks: the normalizing-flow pose prior and the lifting network."""
