"""The labelling web app: a FastAPI server over a ``LabelStore`` and its cached clips.

Routes (JSON unless noted; ``X-Labeller`` carries the labeller's token):

* ``GET /`` the page (HTML); ``GET /static/app.js``, ``/static/app.css`` its script and style.
* ``POST /api/labellers {"name"}`` → ``{"token"}``.
* ``GET /api/next`` → ``{"query": {"id", "clips", "factors", "factor_names"} | null, "stats"}``.
* ``POST /api/labels {"query_id", "choice", "seconds"}`` → 201 ``{"label_id", "closed", "stats"}``;
  401 unknown labeller, 404 unknown query, 409 closed or already answered, 422 invalid input.
* ``POST /api/undo`` → ``{"query_id"}`` (404: nothing to undo).
* ``GET /api/stats`` → ``Stats`` as an object.
* ``GET /clips/<name>`` the clip (``image/gif``); only names ``q<id>_<side>.gif`` that a query lists.

With an ``access_key`` every route needs it (cookie ``rewardlab_key``, header ``X-Access-Key`` or
``?key=``, which also sets the cookie); serving beyond loopback requires one.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the request models defined inside
# ``create_app`` from the annotations at run time.

import ipaddress
import math
import os
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from rewardlab.labelling._clips import clip_path
from rewardlab.labelling._store import LabellingError, LabelStore, Stats

_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
KEY_COOKIE = "rewardlab_key"


def labelling_paths(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The store file and the clips folder of a run: ``RUN_DIR/labelling/labels.sqlite`` and ``.../clips``."""
    folder = Path(run_dir) / "labelling"
    return folder / "labels.sqlite", folder / "clips"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only the loopback interface (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stats_json(stats: Stats) -> dict[str, Any]:
    out = stats._asdict()
    out["agreement"] = None if math.isnan(stats.agreement) else stats.agreement
    return out


def _static_text(name: str) -> str:
    return resources.files("rewardlab.labelling").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def create_app(run_dir: str | os.PathLike, access_key: str | None = None) -> Any:
    """The FastAPI app serving the labelling session of ``run_dir`` (store and clips made if missing).

    Raises:
        ImportError: FastAPI is not installed (``pip install 'rewardlab[labelling]'``).
    """
    try:
        from fastapi import FastAPI, Header, Request
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
        from pydantic import BaseModel, Field
    except ImportError as error:  # pragma: no cover - exercised without the extra only
        raise ImportError("the labelling server needs FastAPI: pip install 'rewardlab[labelling]'") from error

    store_path, clips_dir = labelling_paths(run_dir)
    clips_dir.mkdir(parents=True, exist_ok=True)
    store = LabelStore(store_path)
    app = FastAPI(title="rewardlab labelling", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    class NewLabeller(BaseModel):
        name: str = Field(min_length=1, max_length=100)

    class NewLabel(BaseModel):
        query_id: int
        choice: str
        seconds: float | None = Field(default=None, ge=0.0, le=86_400.0)

    async def _check_key(request: Request, call_next: Any) -> Any:
        assert access_key is not None  # installed only with a key
        given = (
            request.headers.get("x-access-key") or request.query_params.get("key") or request.cookies.get(KEY_COOKIE)
        )
        if not secrets.compare_digest((given or "").encode(), access_key.encode()):
            return JSONResponse({"detail": "access key: missing or wrong"}, status_code=401)
        response = await call_next(request)
        if request.query_params.get("key"):
            response.set_cookie(KEY_COOKIE, access_key, httponly=True, samesite="strict")
        return response

    if access_key is not None:  # an HTTP middleware costs every request its time: only where it checks something
        app.middleware("http")(_check_key)

    @app.exception_handler(LabellingError)
    async def _refused(request: Request, error: LabellingError) -> Any:
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    def _labeller(token: str | None) -> str:
        if not token or store.labeller(token) is None:
            raise LabellingError("X-Labeller: expected the token of a registered labeller", 401)
        return token

    @app.get("/", response_class=HTMLResponse)
    async def page() -> Any:
        return HTMLResponse(_static_text("index.html"))

    @app.get("/static/{name}")
    async def static(name: str) -> Any:
        if name not in _STATIC:
            raise LabellingError(f"name: no static file {name!r}", 404)
        return Response(_static_text(name), media_type=_STATIC[name])

    @app.post("/api/labellers", status_code=201)
    async def new_labeller(body: NewLabeller) -> dict[str, str]:
        return {"token": store.add_labeller(body.name), "name": body.name}

    @app.get("/api/next")
    async def next_query(x_labeller: str | None = Header(default=None)) -> dict[str, Any]:
        token = _labeller(x_labeller)
        query = store.next_query(token)
        body = None
        if query is not None:
            body = query._asdict()
            body["clips"] = [f"/clips/{name}" if name else "" for name in query.clips]
        return {"query": body, "stats": _stats_json(store.stats(token))}

    @app.post("/api/labels", status_code=201)
    async def new_label(body: NewLabel, x_labeller: str | None = Header(default=None)) -> dict[str, Any]:
        token = _labeller(x_labeller)
        result = store.add_label(token, body.query_id, body.choice, body.seconds)
        return {**result, "stats": _stats_json(store.stats(token))}

    @app.post("/api/undo")
    async def undo(x_labeller: str | None = Header(default=None)) -> dict[str, Any]:
        token = _labeller(x_labeller)
        query_id = store.undo(token)
        # "taken": the trainer had read the answer; it drops it at its next round and takes the new one.
        return {"query_id": query_id, "taken": store.taken(query_id), "stats": _stats_json(store.stats(token))}

    @app.get("/api/stats")
    async def stats(x_labeller: str | None = Header(default=None)) -> dict[str, Any]:
        return _stats_json(store.stats(x_labeller))

    @app.get("/clips/{name}")
    async def clip(name: str) -> Any:
        path = clip_path(clips_dir, name)
        content_type = store.clip(name) if path is not None else None
        if path is None or content_type is None or not path.is_file():
            raise LabellingError(f"name: no clip {name!r}", 404)
        return FileResponse(path, media_type=content_type, headers={"Cache-Control": "max-age=86400, immutable"})

    return app


def serve(run_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, access_key: str | None = None) -> Any:
    """Run the labelling server in the foreground (uvicorn) until interrupted.

    Raises:
        ValueError: ``host`` is not loopback and no ``access_key`` is given.
    """
    if not is_loopback(host) and not access_key:
        raise ValueError(f"host: serving on {host!r} (not loopback) needs an access key (--access-key)")
    import uvicorn

    uvicorn.run(create_app(run_dir, access_key), host=host, port=port, log_level="warning")
