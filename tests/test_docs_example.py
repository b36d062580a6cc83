"""The documentation's pipeline example runs and learns a reward that tracks the true one."""

import importlib.util
from pathlib import Path


def test_own_pipeline_example_runs():
    path = Path(__file__).parent.parent / "docs" / "examples" / "own_pipeline.py"
    spec = importlib.util.spec_from_file_location("own_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.main(total_timesteps=256, labels=40)
    assert figures["train_accuracy"] > 0.8
    assert float(figures["segment"]) > 0.5
