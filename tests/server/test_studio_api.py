"""The studio's HTTP API: uploads checked by parsing, bounded, no file outside the workspace,
errors as messages (the server survives), generation jobs that finish or are cancelled."""

import io
import time

import numpy as np
import pytest

from conftest import REPO, random_performance
from tatumflow import read_midi, write_midi

FIX = REPO / "tests" / "fixtures"


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from tatumflow.server.studio import create_app

    app = create_app(tmp_path / "ws", checkpoints=[str(FIX / "music_rnn_v1")])
    with TestClient(app) as c:
        yield c


def midi_bytes(tmp_path, n=60, seed=0) -> bytes:
    return write_midi(random_performance(np.random.default_rng(seed), n, span=6.0, pedal=False),
                      tmp_path / f"p{seed}.mid").read_bytes()


def wait(client, job_id, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = client.get(f"/api/jobs/{job_id}").json()
        if j["status"] not in ("queued", "running"):
            return j
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_upload_roll_audio_download_and_history(client, tmp_path):
    data = midi_bytes(tmp_path)
    r = client.post("/api/upload", files={"file": ("take one.mid", data, "audio/midi")})
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["kind"] == "upload" and item["notes"] == 60
    full = client.get(f"/api/items/{item['id']}").json()
    assert len(full["roll"]["pitch"]) == 60 and max(full["roll"]["offset"]) == pytest.approx(item["seconds"], abs=0.01)
    wav = client.get(f"/api/items/{item['id']}/audio.wav")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    import wave

    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(item["seconds"] + 1.5, abs=0.05)
    mid = client.get(f"/api/items/{item['id']}/file.mid")
    (tmp_path / "back.mid").write_bytes(mid.content)
    assert len(read_midi(tmp_path / "back.mid")) == 60
    ex = client.post("/api/example/bach_chorale_bwv101_7").json()
    assert [i["id"] for i in client.get("/api/items").json()] == [ex["id"], item["id"]]
    info = client.get("/api/info").json()
    assert "bach_chorale_bwv101_7" in info["examples"] and info["renderer"] in ("soundfont", "builtin")
    assert any(m["family"] == "music_rnn" for m in info["models"])


@pytest.mark.parametrize("name,data,message", [
    ("notes.txt", b"these are not notes", "not a MIDI file"),
    ("fake.mid", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x09\x00\x90", "corrupt MIDI"),
    ("empty.mid", b"", "the file is empty"),
    ("huge.mid", b"MThd" + b"\x00" * (5 * 1024 * 1024), "over the 4 MB limit"),
])
def test_bad_uploads_are_refused_with_a_reason(client, name, data, message):
    r = client.post("/api/upload", files={"file": (name, data, "audio/midi")})
    assert r.status_code == 400 and message in r.json()["error"]
    assert client.get("/api/items").json() == []  # nothing stored


@pytest.mark.parametrize("path", [
    "/api/items/..%2F..%2Fetc%2Fpasswd", "/api/items/../../etc/passwd/file.mid", "/static/../studio.py",
    "/static/..%2Fstudio.py", "/api/items/%2Fetc%2Fpasswd/audio.wav", "/static/%2e%2e/%2e%2e/pyproject.toml",
])
def test_no_file_outside_the_workspace_is_served(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404) and b"root:" not in r.content and b"def create_app" not in r.content


def test_the_server_survives_bad_requests(client):
    assert client.post("/api/generate", json={"model": "nope", "params": {}}).status_code == 400
    assert client.post("/api/generate", json={"model": str(FIX / "music_rnn_v1"), "params": "x"}).status_code == 400
    r = client.post("/api/generate", json={"model": str(FIX / "music_rnn_v1"), "params": {"strength": 0.5}})
    assert r.status_code == 400 and "'strength' is not an option of music_rnn models" in r.json()["error"]
    assert client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code in (400, 422)
    r = client.post("/api/generate", json={"model": str(FIX / "music_rnn_v1"), "params": {"seconds": "--out=/tmp/x"}})
    assert r.status_code == 400 and "is not a value" in r.json()["error"]
    assert client.get("/api/jobs/123").status_code == 400
    assert client.post("/api/assess/zzz").status_code == 400
    assert client.post("/api/compare", json={"gen": [], "ref": []}).status_code == 400
    assert client.get("/api/info").status_code == 200  # still serving


def test_generate_a_continuation_then_cancel_a_long_job(client, tmp_path):
    item = client.post("/api/upload", files={"file": ("p.mid", midi_bytes(tmp_path), "audio/midi")}).json()
    model = str(FIX / "music_rnn_v1")
    job = client.post("/api/generate", json={"model": model, "params": {"prompt": item["id"], "seconds": 3,
                                                                        "seed": 1}}).json()
    done = wait(client, job["id"])
    assert done["status"] == "done", done
    new = client.get(f"/api/items/{done['items'][0]}").json()
    assert new["kind"] == "generated" and new["params"]["seconds"] == 3 and new["parent"] == item["id"]
    last_prompt = max(client.get(f"/api/items/{item['id']}").json()["roll"]["onset"])
    assert new["notes"] > item["notes"] and new["seconds"] > last_prompt
    # a bad value is the command's own one-line error, shown as the job's error
    bad = wait(client, client.post("/api/generate", json={"model": model, "params": {"seconds": -1}}).json()["id"])
    assert bad["status"] == "failed" and "argument --seconds" in bad["error"]
    long = client.post("/api/generate", json={"model": model, "params": {"seconds": 3000}}).json()
    time.sleep(1.0)
    assert client.post(f"/api/jobs/{long['id']}/cancel").json()["status"] == "cancelled"
    assert wait(client, long["id"])["status"] == "cancelled"


def test_assess_with_uncertainty_and_warnings_and_compare(client, tmp_path):
    a = client.post("/api/upload", files={"file": ("a.mid", midi_bytes(tmp_path, 120, 1), "audio/midi")}).json()
    r = client.post(f"/api/assess/{a['id']}").json()
    assert len(r["rating"]) == len(r["spread"]) == 19 and all(1 <= v <= 7 for v in r["rating"])
    assert all(s > 0 for s in r["spread"]) and any("no sustain pedal" in w for w in r["warnings"])
    b, c, d, e, f = (client.post("/api/upload", files={"file": (f"{k}.mid", midi_bytes(tmp_path, 120, k),
                                                                "audio/midi")}).json() for k in (2, 3, 4, 5, 6))
    one = client.post("/api/compare", json={"gen": [a["id"]], "ref": [b["id"], c["id"], d["id"]]}).json()
    assert one["mean_oa"] is None and "three or more" in one["note"] and 0 <= one["style"]["gen_mean"] <= 1
    sets = {"gen": [a["id"], e["id"], f["id"]], "ref": [b["id"], c["id"], d["id"]]}
    three = client.post("/api/compare", json=sets).json()
    assert three["features"] > 10 and 0 < three["mean_oa"] <= 1 and three["style"]["target"] == "Art Tatum"
