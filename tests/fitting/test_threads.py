import numpy as np  # noqa: F401  (loads numpy's OpenBLAS)
import scipy.optimize  # noqa: F401  (loads scipy's OpenBLAS)

from scaling_lab.fitting.threads import _openblas_libraries, single_threaded_blas


def test_blas_is_single_threaded_inside_and_restored_after():
    libraries = _openblas_libraries()
    before = [getattr(lib, pattern % "get")() for lib, pattern in libraries]
    with single_threaded_blas():
        assert all(getattr(lib, pattern % "get")() == 1 for lib, pattern in libraries)
    assert [getattr(lib, pattern % "get")() for lib, pattern in libraries] == before
