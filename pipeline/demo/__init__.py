"""The narrated demo of the whole pipeline on the local platform (``pipeline demo``)."""
