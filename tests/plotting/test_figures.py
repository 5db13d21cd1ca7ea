import numpy as np
import pytest

from scaling_lab.budget import FlopsPerToken
from scaling_lab.fitting.approach1 import fit_approach1
from scaling_lab.fitting.approach2 import fit_approach2
from scaling_lab.fitting.approach3 import fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3 as TRUTH
from scaling_lab.fitting.synthetic import curves_table, isoflop_table
from scaling_lab.plotting.figures import all_figures, contour_figure, frontier_figure, isoflop_figure


@pytest.fixture(scope="module")
def fitted():
    points = isoflop_table(TRUTH, budgets=np.geomspace(1e18, 1e21, 5), noise=0.01, seed=0)
    curves = curves_table(TRUTH, sizes=np.geomspace(1e7, 1e9, 5), points_per_curve=20)
    boot = BootstrapConfig(n_resamples=8, n_jobs=1)
    results = {
        "approach3": fit_approach3(points, bootstrap_config=boot),
        "approach2": fit_approach2(points, bootstrap_config=boot),
        "approach1": fit_approach1(curves),
    }
    return points, curves, results


def test_every_figure_is_written_as_png_and_svg(tmp_path, fitted):
    points, curves, results = fitted
    written = all_figures(points, curves, results, tmp_path)
    assert set(written) == {"isoflop", "frontier", "envelope", "contours", "residuals"}
    for paths in written.values():
        png, svg = sorted(paths, key=lambda p: p.suffix)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:500]


def test_frontier_figure_draws_each_approach_with_its_band(fitted):
    points, _, results = fitted
    figure = frontier_figure(points, results)
    n_axis, d_axis = figure.axes
    labels = [line.get_label() for line in n_axis.lines]
    assert [label.split()[0] for label in labels] == ["approach3", "approach2", "approach1"]
    # bands only where bootstrap samples exist (approaches 3 and 2 here)
    assert len(n_axis.collections) == 2 + 1  # two bands + approach 2's budget minima
    approach3_line = n_axis.lines[0].get_ydata()
    np.testing.assert_allclose(approach3_line, results["approach3"].law.n_opt(n_axis.lines[0].get_xdata()))
    assert d_axis.get_ylabel().startswith("D_opt")


def test_isoflop_figure_marks_one_minimum_per_budget(fitted):
    points, _, results = fitted
    figure = isoflop_figure(points, results)
    markers = [line for line in figure.axes[0].lines if line.get_marker() == "v"]
    assert len(markers) == results["approach2"].n_budgets == 5


def test_isoflop_markers_are_each_budgets_own_minimum_at_cpu_scale() -> None:
    """Budgets of 1e8-1e10 FLOPs (a CPU sweep's): each slice is marked at approach 2's minimum of that slice, not
    at another budget's whose C merely rounds alike."""
    points = isoflop_table(TRUTH, budgets=np.geomspace(1e8, 1e10, 3), noise=0.0, seed=0)
    result = fit_approach2(points)
    figure = isoflop_figure(points, {"approach2": result})
    markers = [(line.get_xdata()[0], line.get_ydata()[0]) for line in figure.axes[0].lines if line.get_marker() == "v"]
    assert markers == [(b.n_opt, b.loss_opt) for b in result.budgets] and len(markers) == 3


def test_contour_figure_draws_the_frontier_along_the_given_flop_accounting(fitted):
    points, _, results = fitted
    exact = FlopsPerToken(accounting="exact", overhead=4e4, exponent=0.5)
    line = contour_figure(points, results["approach3"].law, exact).axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), results["approach3"].law.n_opt(line.get_xdata(), exact))
    assert not np.allclose(line.get_ydata(), results["approach3"].law.n_opt(line.get_xdata()))  # not 6ND's
