"""Keep BLAS single-threaded while polishing fits.

L-BFGS-B works on 5×5 problems, yet the OpenBLAS bundled with numpy/scipy spins up its thread pool for
them: measured on a shared 2-core machine, one polish took 0.5 s with the default pool and 0.02 s with one
thread. ``threadpoolctl`` does this in general but is not a dependency: we call OpenBLAS's own
``*_set_num_threads`` on the bundled libraries that are loaded (Linux; found once per process, since numpy
and scipy load theirs at import), and do nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from pathlib import Path

_SUFFIXES = ("", "64_")


@functools.cache
def _openblas_libraries() -> list[tuple[ctypes.CDLL, str]]:
    """OpenBLAS libraries loaded in this process, with their thread-count function pattern (found once)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line and "/" in line}
    out = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in _SUFFIXES:
                if hasattr(lib, f"{prefix}_set_num_threads{suffix}") and hasattr(
                    lib, f"{prefix}_get_num_threads{suffix}"
                ):
                    out.append((lib, f"{prefix}_%s_num_threads{suffix}"))
                    break
    return out


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, BLAS runs on one thread; the previous setting is restored after."""
    libraries = _openblas_libraries()
    previous = [getattr(lib, pattern % "get")() for lib, pattern in libraries]
    for lib, pattern in libraries:
        getattr(lib, pattern % "set")(1)
    try:
        yield
    finally:
        for (lib, pattern), count in zip(libraries, previous, strict=True):
            getattr(lib, pattern % "set")(int(count))
