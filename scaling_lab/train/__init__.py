"""Training: plan, schedules, per-size rules, step, checkpoint, loop, and one grid point end to end."""
