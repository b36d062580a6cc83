"""Human preference labelling: a local web app whose labels feed the online preference loop.

``rewardlab label serve RUN_DIR`` serves the page on 127.0.0.1; ``HumanTeacher(RUN_DIR)`` (or
``make_teacher("human", run_dir=RUN_DIR)`` once this package is imported) is the online loop's
teacher that queues its queries there. Everything lives in ``RUN_DIR/labelling/``: the SQLite store
(``LabelStore``) and the cached clips. FastAPI and uvicorn come with ``pip install 'rewardlab[labelling]'``.
"""

from rewardlab.labelling._clips import (
    CLIP_NAME,
    ClipRenderer,
    clip_path,
    encode_gif,
    env_renderer,
    observation_renderer,
    pendulum_renderer,
    render_clips,
)
from rewardlab.labelling._server import create_app, is_loopback, labelling_paths, serve
from rewardlab.labelling._store import (
    CHOICES,
    LabellingError,
    LabelStore,
    Query,
    Stats,
    labels_of,
    load_preferences,
    pairwise_agreement,
    save_preferences,
)
from rewardlab.labelling._teacher import HumanTeacher, make_human_teacher
from rewardlab.preferences import register_teacher

register_teacher("human", make_human_teacher)

__all__ = [
    "CHOICES",
    "CLIP_NAME",
    "ClipRenderer",
    "HumanTeacher",
    "LabelStore",
    "LabellingError",
    "Query",
    "Stats",
    "clip_path",
    "create_app",
    "encode_gif",
    "env_renderer",
    "is_loopback",
    "labelling_paths",
    "labels_of",
    "load_preferences",
    "make_human_teacher",
    "observation_renderer",
    "pairwise_agreement",
    "pendulum_renderer",
    "render_clips",
    "save_preferences",
    "serve",
]
