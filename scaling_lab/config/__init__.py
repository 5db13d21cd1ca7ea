"""Typed run configuration: RunConfig and its sections (Hydra registers them in ``cli/compose.py``)."""
