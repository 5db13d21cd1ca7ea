"""Keep BLAS single-threaded while polishing fits.

L-BFGS-B works on 5×5 problems, yet the OpenBLAS bundled with numpy/scipy spins up its thread pool for
them: measured on a shared 2-core machine, one polish took 0.5 s with the default pool and 0.02 s with one
thread (scripts/bench_fit.py). ``threadpoolctl`` does this in general; without it we call OpenBLAS's own
``*_set_num_threads`` on the bundled libraries that are loaded (Linux), and do nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path

_SUFFIXES = ("", "64_")


def _openblas_libraries() -> list[tuple[ctypes.CDLL, str]]:
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
    try:
        from threadpoolctl import threadpool_limits  # optional: the general tool when installed
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
        return
    libraries = _openblas_libraries()
    previous = [getattr(lib, pattern % "get")() for lib, pattern in libraries]
    for lib, pattern in libraries:
        getattr(lib, pattern % "set")(1)
    try:
        yield
    finally:
        for (lib, pattern), count in zip(libraries, previous, strict=True):
            getattr(lib, pattern % "set")(int(count))
