"""Scaling-law fits. Never imports torch: a refit runs anywhere in seconds (shared/DESIGN.md)."""
