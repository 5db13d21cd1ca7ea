"""The trainer tests run torch on one thread (their tiny configs, ``tiny_config``, are in tests/conftest.py)."""

import torch

torch.set_num_threads(1)
