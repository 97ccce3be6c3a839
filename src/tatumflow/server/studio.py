"""The web studio: open, hear, generate, rate and compare piano performances in a browser.

A FastAPI app (served by uvicorn) over one workspace folder. Everything the page
shows is an *item* (an uploaded file, a built-in example or a generated piece):
its MIDI, its audio (rendered on first request) and the parameters that made it,
kept in ``history.json``. Item ids are made by the server; no request names a path,
so nothing outside the workspace (and the package's own page) is ever served.

Generation runs the ``tatumflow generate`` command in a child process per job: the
same code and the same one-line errors as the command line, real cancellation
(the process group is ended), and the page polls the job for its state and log.

Why FastAPI rather than Gradio: one small dependency set (Starlette, pydantic,
uvicorn), a plain HTML/JS page we control and test in a real browser, and an
HTTP API that scripts can use too.
"""


import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import TatumFlowError
from ..utils import write_json_atomic

STATIC = Path(__file__).with_name("static")
EXAMPLES = Path(__file__).with_name("examples")
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
MAX_UPLOAD_SECONDS = 20 * 60.0
MAX_ROLL_NOTES = 20000
ITEM_ID = re.compile(r"^[0-9a-f]{12}$")
#: Generation parameters the page may send, and the ``generate`` option each becomes.
GENERATE_PARAMS = {
    "mode": "--mode", "seconds": "--seconds", "seed": "--seed", "temperature": "--temperature",
    "prompt_seconds": "--prompt-seconds", "strength": "--strength", "creativity": "--creativity",
    "chords": "--chords", "alphas": "--alphas", "variations": "--variations", "steps": "--steps",
    "guidance": "--guidance", "top_p": "--top-p", "count": "--count", "threshold": "--threshold", "z": "--z",
}
SHARED_PARAMS = {"mode", "seconds", "seed", "temperature", "prompt_seconds"}


class StudioError(TatumFlowError):
    """A request the studio cannot do (shown on the page, never a crash)."""


# ---------------------------------------------------------------- workspace: items and history
class Workspace:
    """The studio's folder: ``items/<id>.mid`` (+ ``.wav``), ``jobs/<id>/``, ``history.json``."""

    def __init__(self, root: "str | os.PathLike"):
        self.root = Path(root).resolve()
        (self.root / "items").mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        self._lock = threading.Lock()
        hist = self.root / "history.json"
        self.items: dict[str, dict] = {}
        if hist.is_file():
            try:
                self.items = {i["id"]: i for i in json.loads(hist.read_text())}
            except (ValueError, KeyError, TypeError):
                self.items = {}  # a damaged history starts afresh; the files stay

    def _save(self) -> None:
        write_json_atomic(self.root / "history.json", list(self.items.values()))

    def item(self, item_id: str) -> dict:
        if not ITEM_ID.match(item_id or "") or item_id not in self.items:
            raise StudioError(f"no item {item_id!r}")
        return self.items[item_id]

    def path(self, item_id: str, ext: str = ".mid") -> Path:
        self.item(item_id)
        return self.root / "items" / f"{item_id}{ext}"

    def add(self, perf, *, kind: str, name: str, params: Optional[dict] = None, parent: Optional[str] = None) -> dict:
        from ..midi import write_midi

        item_id = uuid.uuid4().hex[:12]
        write_midi(perf, self.root / "items" / f"{item_id}.mid")
        item = {"id": item_id, "kind": kind, "name": name, "params": params or {}, "parent": parent,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(perf.end, 2), "notes": len(perf)}
        with self._lock:
            self.items[item_id] = item
            self._save()
        return item

    def performance(self, item_id: str):
        from ..midi import read_midi

        return read_midi(self.path(item_id))

    def audio(self, item_id: str, **render) -> Path:
        """The item's WAV, rendered once."""
        from ..render import render_file

        wav = self.path(item_id, ".wav")
        if not wav.exists():
            audio = render_file(self.performance(item_id), wav, **render)
            with self._lock:
                self.items[item_id]["audio"] = audio.describe()
                self._save()
        return wav


def read_upload(data: bytes, filename: str, scratch: Path):
    """A Performance from uploaded bytes, or a StudioError saying why not. The type is
    checked by parsing (the reader's strict scan), never by the name alone."""
    from ..errors import MidiReadError
    from ..midi import read_midi

    if len(data) > MAX_UPLOAD_BYTES:
        raise StudioError(f"{filename}: {len(data) / 1e6:.1f} MB is over the {MAX_UPLOAD_BYTES / 1e6:.0f} MB limit")
    if not data:
        raise StudioError(f"{filename}: the file is empty")
    tmp = scratch / f"upload-{uuid.uuid4().hex}.mid"
    try:
        tmp.write_bytes(data)
        perf = read_midi(tmp)
    except MidiReadError as exc:
        raise StudioError(f"{filename}: {exc.reason}") from None
    finally:
        tmp.unlink(missing_ok=True)
    if not len(perf):
        raise StudioError(f"{filename}: no notes")
    if perf.end > MAX_UPLOAD_SECONDS:
        raise StudioError(f"{filename}: {perf.end / 60:.1f} minutes is over the {MAX_UPLOAD_SECONDS / 60:.0f}-minute limit")
    return perf


# ---------------------------------------------------------------- models and generation jobs
def list_models(checkpoints: list[str]) -> list[dict]:
    """Shipped models and the checkpoints the studio was started with: name, family, modes, options."""
    from ..models.registry import FAMILIES
    from ..pretrained import shipped_models
    from ..training.checkpoint import load_checkpoint

    out = [{"name": c["name"], "family": c["family"], "source": "shipped"} for c in shipped_models()]
    for ck in checkpoints:
        st = load_checkpoint(ck)["state"]
        out.append({"name": str(ck), "family": st["family"], "source": "checkpoint"})
    for m in out:
        fam = FAMILIES[m["family"]]
        m["modes"] = list(fam.modes)
        m["params"] = sorted(SHARED_PARAMS | set(_family_params(fam)))
    return out


def _family_params(fam) -> list[str]:
    import argparse

    g = argparse.ArgumentParser(add_help=False)
    fam.add_generate_options(g)
    return [a.dest for a in g._actions if a.dest in GENERATE_PARAMS]


@dataclass
class Job:
    id: str
    model: str
    params: dict
    status: str = "queued"           # queued | running | done | failed | cancelled
    stage: str = "waiting to start"
    log: list = field(default_factory=list)
    error: str = ""
    items: list = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: Optional[float] = None
    proc: Optional[subprocess.Popen] = field(default=None, repr=False)

    def public(self) -> dict:
        return {"id": self.id, "model": self.model, "params": self.params, "status": self.status,
                "stage": self.stage, "log": self.log[-20:], "error": self.error, "items": self.items,
                "elapsed": round((self.ended or time.time()) - self.started, 1)}


class Jobs:
    """Generation jobs: one ``tatumflow generate`` child process each."""

    def __init__(self, ws: Workspace, models: list[dict]):
        self.ws, self.models = ws, {m["name"]: m for m in models}
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def argv(self, job: Job, out: Path) -> list[str]:
        m = self.models.get(job.model)
        if m is None:
            raise StudioError(f"no model {job.model!r} (choose one of {', '.join(self.models)})")
        params = dict(job.params)
        allowed = set(m["params"])
        argv = [sys.executable, "-m", "tatumflow.cli.main", "generate", "--checkpoint", job.model,
                "--out", str(out), "--device", "cpu"]
        for ref, flag in (("prompt", "--prompt"), ("style", "--style")):
            if params.get(ref):
                argv += [flag, str(self.ws.path(str(params.pop(ref))))]
            params.pop(ref, None)
        for k, v in params.items():
            if v in (None, ""):
                continue
            if k not in GENERATE_PARAMS or k not in allowed:
                raise StudioError(f"{k!r} is not an option of {m['family']} models")
            text = str(v)
            if text.startswith("-") and not re.fullmatch(r"-\d+(\.\d*)?", text):
                raise StudioError(f"{k}: {text!r} is not a value")  # never an option smuggled in as a value
            argv += [f"{GENERATE_PARAMS[k]}={text}"]
        return argv

    def start(self, model: str, params: dict) -> Job:
        job = Job(uuid.uuid4().hex[:12], model, dict(params))
        out_dir = self.ws.root / "jobs" / job.id
        out_dir.mkdir(parents=True)
        argv = self.argv(job, out_dir / "out.mid")  # a bad request fails here, before any process
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, argv, out_dir), daemon=True).start()
        return job

    def _run(self, job: Job, argv: list[str], out_dir: Path) -> None:
        job.status, job.stage = "running", "loading the model and generating"
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
        job.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True, env=env)
        for line in job.proc.stdout:  # the command's own progress lines
            line = line.strip().replace(str(out_dir) + os.sep, "")
            if line and "it/s]" not in line:
                job.log.append(line)
                job.stage = "writing results"
        rc = job.proc.wait()
        job.ended = time.time()
        if job.status == "cancelled":
            return
        if rc != 0:
            errors = [ln for ln in job.log if ": error: " in ln]
            job.status, job.error = "failed", (errors[-1].split(": error: ", 1)[1] if errors
                                                else f"generate exited with status {rc}")
            return
        from ..midi import read_midi

        for f in sorted(out_dir.glob("*.mid")):
            item = self.ws.add(read_midi(f), kind="generated", name=f"{self.models[job.model]['family']} "
                               f"{job.params.get('mode') or 'default'} {f.stem}", params={"model": job.model,
                               **job.params}, parent=job.params.get("prompt"))
            job.items.append(item["id"])
        job.status, job.stage = "done", "done"

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise StudioError(f"no job {job_id!r}")
        return self.jobs[job_id]

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status in ("queued", "running"):
            job.status, job.stage = "cancelled", "cancelled"
            if job.proc is not None and job.proc.poll() is None:
                try:
                    os.killpg(job.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        return job


# ---------------------------------------------------------------- the app
def create_app(workspace: "str | os.PathLike", *, checkpoints: Optional[list[str]] = None,
               soundfont: Optional[str] = None):
    """The studio's ASGI app over ``workspace`` (created if missing)."""
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    ws = Workspace(workspace)
    models = list_models([str(c) for c in checkpoints or []])
    jobs = Jobs(ws, models)
    app = FastAPI(title="TatumFlow studio", docs_url=None, redoc_url=None)
    app.state.workspace, app.state.jobs = ws, jobs
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(TatumFlowError)
    async def _known(request: Request, exc: TatumFlowError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception):  # the server survives; the page says what happened
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info():
        from ..render.audio import choose_renderer

        renderer, sf = choose_renderer("auto", soundfont)
        return {"models": models, "examples": sorted(p.stem for p in EXAMPLES.glob("*.mid")),
                "renderer": renderer, "soundfont": str(sf) if sf else None,
                "limits": {"upload_bytes": MAX_UPLOAD_BYTES, "upload_seconds": MAX_UPLOAD_SECONDS}}

    @app.post("/api/upload")
    async def upload(file: UploadFile = File(...)):
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        perf = read_upload(data, Path(file.filename or "upload.mid").name, ws.root / "jobs")
        return ws.add(perf, kind="upload", name=Path(file.filename or "upload.mid").name)

    @app.post("/api/example/{name}")
    def example(name: str):
        from ..midi import read_midi

        files = {p.stem: p for p in EXAMPLES.glob("*.mid")}
        if name not in files:
            raise StudioError(f"no example {name!r}")
        return ws.add(read_midi(files[name]), kind="example", name=name)

    @app.get("/api/items")
    def items():
        return list(ws.items.values())[::-1]

    @app.get("/api/items/{item_id}")
    def item(item_id: str):
        perf = ws.performance(item_id)
        n = perf.notes[:MAX_ROLL_NOTES]
        return {**ws.item(item_id), "roll": {"onset": n["onset"].round(4).tolist(),
                                            "offset": n["offset"].round(4).tolist(),
                                            "pitch": n["pitch"].tolist(), "velocity": n["velocity"].tolist()},
                "pedals": perf.pedal_intervals().round(4).tolist()}

    @app.get("/api/items/{item_id}/audio.wav")
    def audio(item_id: str):
        return FileResponse(ws.audio(item_id, soundfont=soundfont), media_type="audio/wav",
                            filename=f"{ws.item(item_id)['name']}.wav")

    @app.get("/api/items/{item_id}/file.mid")
    def midi(item_id: str):
        return FileResponse(ws.path(item_id), media_type="audio/midi", filename=f"{ws.item(item_id)['name']}.mid")

    @app.post("/api/generate")
    def generate(body: dict):
        if not isinstance(body.get("params", {}), dict):
            raise StudioError("params must be an object")
        return jobs.start(str(body.get("model", "")), body.get("params", {})).public()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str):
        return jobs.get(job_id).public()

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str):
        return jobs.cancel(job_id).public()

    @app.post("/api/assess/{item_id}")
    def assess(item_id: str):
        from ..assessment.shipped import rate

        return {"item": item_id, **rate(ws.performance(item_id))}

    @app.post("/api/compare")
    def compare(body: dict):
        from ..evaluation.report import evaluate
        from ..evaluation.style import load_default_judge

        gen, ref = [ws.item(str(i))["id"] for i in body.get("gen", [])], [ws.item(str(i))["id"] for i in
                                                                          body.get("ref", [])]
        if not gen or not ref:
            raise StudioError("choose at least one piece to judge and one reference piece")
        out = ws.root / "jobs" / f"compare-{uuid.uuid4().hex[:8]}"
        rep = evaluate([ws.performance(i) for i in gen], [ws.performance(i) for i in ref], out, plots=False,
                       progress=False)
        judge = load_default_judge()
        s = rep["set_vs_set"]["summary"]
        finite = lambda x: x if isinstance(x, (int, float)) and math.isfinite(x) else None  # noqa: E731
        return {"mean_oa": finite(s["mean_oa"]), "mean_kl": finite(s["mean_kl"]), "features": s["features"],
                "style": rep["style"], "judge_target": judge.target if judge else None,
                "note": "mean OA needs three or more pieces per set" if min(len(gen), len(ref)) < 3 else ""}

    return app


def serve(workspace: "str | os.PathLike", *, host: str = "127.0.0.1", port: int = 8765,
          checkpoints: Optional[list[str]] = None, soundfont: Optional[str] = None, echo=print) -> None:
    """Run the studio until interrupted (localhost only unless ``host`` says otherwise)."""
    import uvicorn

    app = create_app(workspace, checkpoints=checkpoints, soundfont=soundfont)
    echo(f"TatumFlow studio on http://{host}:{port}/  (workspace {Path(workspace).resolve()}; Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["create_app", "serve", "Workspace", "Jobs", "read_upload", "StudioError", "list_models"]
