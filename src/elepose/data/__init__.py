"""Data in: motion capture, public dataset formats, and the common pose cache."""
