"""Models: the normalizing flow on 2D poses, the lifting network, input normalisation, run folders."""
