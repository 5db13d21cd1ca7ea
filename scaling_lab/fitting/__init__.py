"""Scaling-law fits. Never imports torch: a refit runs anywhere in seconds (docs/ARCHITECTURE.md)."""
