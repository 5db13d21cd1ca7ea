"""Entry points. The only code that sees a Hydra DictConfig; everything below takes typed configs."""
