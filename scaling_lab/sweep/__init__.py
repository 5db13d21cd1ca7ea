"""Sweeps: where grid points run (placement), the dry-run plan, and collecting results into one table."""
