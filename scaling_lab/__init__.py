"""scaling_lab: sweep small real language models over (N, D), record, fit scaling laws, plan budgets."""

__version__ = "0.1.0"
