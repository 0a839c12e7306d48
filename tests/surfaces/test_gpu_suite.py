"""benchmarks/gpu_suite.py: its CPU dry run, so the suite a GPU session runs first is known to work."""

import json

import pytest

from repo_scripts import load_script


def load_suite():
    return load_script("benchmarks/gpu_suite.py")


@pytest.mark.slow
def test_the_dry_run_measures_every_row_first_call_and_warm_and_writes_json(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert (
        load_suite().main(["--device", "cpu", "--quick", "--repeats", "1", "--out", str(out)]) == 0
    )
    payload = json.loads(out.read_text())
    assert payload["quick"] is True and payload["skipped"] == []
    rows = {row["name"]: row for row in payload["rows"]}
    for name in ("per-sample landscape", "risk only", "SGD trajectories"):
        for when in ("first call", "warm"):
            row = rows[f"{name}, {when}"]
            assert row["device"] == "cpu" and row["seconds"] > 0
    # each landscape and trajectory row carries its floor measured in the same run
    assert rows["SGD trajectories, warm"]["baseline_seconds"] > 0
    assert rows["per-sample landscape, warm"]["baseline_seconds"] > 0
    assert "digits-MLP slice, warm" in rows
    assert "wrote" in capsys.readouterr().out


def test_without_cuda_the_default_device_is_one_line_and_exit_2(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert load_suite().main([]) == 2
    assert "--device cpu --quick" in capsys.readouterr().err
