import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from scaling_lab.cli.budget import to_config
from scaling_lab.errors import ConfigError
from scaling_lab.fitting.laws import BESIROGLU_2024
from scaling_lab.planning.app import run_budget

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")


def _config(*overrides):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return to_config(compose(config_name="sl_budget", overrides=list(overrides)))


def test_report_for_a_flops_budget_with_every_section():
    config = _config(
        "flops=5.9e21",
        "law=besiroglu2024",
        "inference_tokens=2e12",
        "reference_models=true",
        "moe.n_experts=8",
        "moe.experts_per_token=2",
    )
    report = run_budget(config)
    assert f"{BESIROGLU_2024.n_opt(5.9e21):.3e}" in report
    for section in ("model.target_n rule", "nearest preset", "MoE:", "over-training factor", "Chinchilla 70B"):
        assert section in report


def test_fit_json_law_and_yaml_style_numbers(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"approach3": BESIROGLU_2024.to_dict(), "n_params_column": "n_params_total"}))
    config = _config(f"law={path}", "n_params=7e9")
    assert config.n_params == 7e9
    report = run_budget(config)
    assert "shape suggestion needs non-embedding N" in report
    assert _config("flops='5.9e21'").flops == 5.9e21  # YAML 1.1 reads 5.9e21 as a string


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="exactly one"):
        run_budget(_config("flops=1e20", "n_params=1e9"))
    with pytest.raises(ConfigError, match=r"moe\.n_experts and moe\.experts_per_token"):
        run_budget(_config("flops=1e20", "moe.n_experts=8"))
    with pytest.raises(ConfigError, match="flops='lots'"):
        _config("flops=lots")


def test_entry_point_exits_2_with_one_line(tmp_path):
    # The installed console script where there is one (Hydra finds configs/ differently from it than from -m).
    script = shutil.which("sl-budget")
    command = [script] if script else [sys.executable, "-m", "scaling_lab.cli.budget"]
    result = subprocess.run(
        [*command, "law=nosuchlaw", "flops=1e20"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: law='nosuchlaw' is neither a published law (chinchilla, besiroglu2024, kaplan2020) "
        "nor an existing fit.json path"
    ]
    assert list(tmp_path.iterdir()) == []  # a query writes nothing
