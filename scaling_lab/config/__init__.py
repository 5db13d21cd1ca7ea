"""Typed run configuration (RunConfig) and its Hydra registration."""
