"""Entry points. The only code that sees a Hydra DictConfig; everything below takes typed configs."""

from pathlib import Path

# Absolute: Hydra reads a relative config_path as a Python module path next to the calling package, which a
# console script cannot resolve. configs/ sits at the repository root (install with `pip install -e .`).
CONFIGS_DIR = str(Path(__file__).resolve().parents[2] / "configs")
