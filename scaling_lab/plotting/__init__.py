"""Figures of fits (matplotlib, no pyplot state). Never imports torch."""
