"""Sweeping reward designs over seeds and arguments, locally or on Ray, with a results table and reports.

Five lines::

    from rewardlab.sweeps import Sweep
    from experiments.bandit import Args, main

    sweep = Sweep(main, Args(), grid={"teacher": ["oracle", "mistake"], "labels": [20, 100], "seed": range(4)})
    results = sweep.run("runs/sweeps/bandit")          # or backend="ray", or "vmap" for a vmappable target
    print(results.groupby("design").correlation.mean())

A target is ``fn(args)`` or ``fn(args, logger=...)`` returning a mapping of final metrics;
``args`` is a frozen dataclass. Each run gets its own seed and folder (``args.json``,
``output.log``, ``metrics.sqlite``, ``tensorboard/``, ``result.json``), on warm worker
processes that import the target once (``fresh_process=True``: a process per run);
the sweep folder gets ``results.parquet``. ``rewardlab sweep FILE`` runs a TOML/YAML
description of the same; ``rewardlab report SWEEP_DIR`` draws learning curves and an
aggregate table (IQM with stratified-bootstrap confidence intervals).
"""

from rewardlab.sweeps._args import parse_args
from rewardlab.sweeps._coerce import check_choices
from rewardlab.sweeps._core import VmapCore, vmappable
from rewardlab.sweeps._file import load_sweep
from rewardlab.sweeps._logger import Logger, RunLogger, read_metrics
from rewardlab.sweeps._process import compile_cache_environment, default_compile_cache, default_workers
from rewardlab.sweeps._ray import INSTALL_HINT as RAY_INSTALL_HINT
from rewardlab.sweeps._report import Report, final_table, make_report
from rewardlab.sweeps._results import load_metrics, load_results
from rewardlab.sweeps._run import RunSpec, execute_run, read_result
from rewardlab.sweeps._runner import BACKENDS, RunState, SweepProgress, run_states, run_sweep
from rewardlab.sweeps._spaces import RandomSearch, choice, loguniform, randint, random_search, uniform
from rewardlab.sweeps._spec import Sweep
from rewardlab.sweeps._stats import Interval, iqm, mean_band, stratified_bootstrap_ci
from rewardlab.sweeps._vmap import grid_designs, vmap_sweep

__all__ = [
    "BACKENDS",
    "Interval",
    "Report",
    "RAY_INSTALL_HINT",
    "Logger",
    "RandomSearch",
    "RunLogger",
    "RunSpec",
    "RunState",
    "Sweep",
    "SweepProgress",
    "VmapCore",
    "check_choices",
    "choice",
    "compile_cache_environment",
    "default_compile_cache",
    "default_workers",
    "execute_run",
    "grid_designs",
    "final_table",
    "iqm",
    "load_metrics",
    "load_results",
    "load_sweep",
    "loguniform",
    "make_report",
    "mean_band",
    "parse_args",
    "randint",
    "random_search",
    "read_metrics",
    "read_result",
    "run_states",
    "run_sweep",
    "stratified_bootstrap_ci",
    "uniform",
    "vmap_sweep",
    "vmappable",
]
