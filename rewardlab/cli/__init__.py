"""The ``rewardlab`` command line."""

from rewardlab.cli._main import app

__all__ = ["app"]
