"""The MelodyVAE control server, driven over loopback UDP by a real OSC client:
a server process, every action, and a bad message of each kind."""

import queue
import socket
import subprocess
import sys
import time

import pytest

from conftest import tune
from tatumflow import write_midi
from tatumflow.models.melody_vae import MelodyVAE, MelodyVAEConfig
from tatumflow.server.melody import MelodySession

pytest.importorskip("pythonosc")
from pythonosc.dispatcher import Dispatcher  # noqa: E402
from pythonosc.osc_server import ThreadingOSCUDPServer  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """Sends to the server; collects its replies on the reply port."""

    def __init__(self, port: int, reply_port: int):
        self.q: queue.Queue = queue.Queue()
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.q.put((address, list(args))))
        self.listener = ThreadingOSCUDPServer(("127.0.0.1", reply_port), d)
        import threading

        threading.Thread(target=self.listener.serve_forever, daemon=True).start()
        self.out = SimpleUDPClient("127.0.0.1", port)

    def ask(self, address, *args, want=None, timeout=20.0):
        """Send, then the first reply at ``want`` (default: the same address or /error)."""
        self.out.send_message(address, list(args))
        return self.wait(want or (address, "/error"), timeout)

    def wait(self, addresses, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            try:
                a, args = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if a in addresses:
                return a, args
        raise AssertionError(f"no reply at {addresses} within {timeout}s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("osc")
    for i in range(6):
        write_midi(tune(i), d / "loops" / f"l{i}.mid")
    ck = MelodySession(MelodyVAE(MelodyVAEConfig(hidden=32))).save(str(d / "model"))
    port, reply = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tatumflow.cli.main", "melody", "serve", "--model", str(ck),
                             "--port", str(port), "--reply-port", str(reply)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = Client(port, reply)
    for _ in range(100):  # until it answers
        client.out.send_message("/status", [])
        try:
            client.wait(("/status",), timeout=0.3)
            break
        except AssertionError:
            assert proc.poll() is None, proc.stderr.read()
    yield client, d
    proc.terminate()
    proc.wait(10)
    client.listener.shutdown()


def test_every_action_over_udp(server):
    c, d = server
    a, st = c.ask("/status")
    assert a == "/status" and st[0] == "idle"
    a, z = c.ask("/encode", str(d / "loops" / "l0.mid"))
    assert a == "/encode" and len(z) == 2 and all(isinstance(v, float) for v in z)
    a, args = c.ask("/decode", 0.5, -0.25, 0.3)
    assert a == "/decode" and args[0].endswith(".mid")
    _, notes = c.wait(("/notes",))
    assert len(notes) % 4 == 0  # pitch, start, duration, velocity per note
    a, args = c.ask("/generate", 0.3, 0.0, 7)
    assert a == "/generate"
    _, sampled = c.wait(("/notes",))
    a, args = c.ask("/interpolate", str(d / "loops" / "l0.mid"), str(d / "loops" / "l1.mid"), 3)
    assert a == "/interpolate"
    c.wait(("/notes",))
    a, n = c.ask("/bend", 2.0, 1)
    assert a == "/bend" and n[0] >= 8
    c.ask("/generate", 0.3, 0.0, 7)
    _, bent = c.wait(("/notes",))
    assert bent != sampled  # the bent model writes other music for the same seed
    assert c.ask("/reset") == ("/reset", [1])
    assert c.ask("/bend", 1.0, 0, "pitch") == ("/bend", [2])  # pitch.weight and pitch.bias only
    assert c.ask("/reset") == ("/reset", [1])
    c.ask("/generate", 0.3, 0.0, 7)
    assert c.wait(("/notes",))[1] == sampled  # reset: the same music as before the bend
    a, saved = c.ask("/save", str(d / "saved"))
    assert a == "/save" and (d / "saved" / "model.safetensors").is_file()
    assert c.ask("/load", str(d / "saved")) == ("/load", [2])
    assert c.ask("/clear", 3) == ("/clear", [1])


def test_training_runs_in_the_background_and_reports(server):
    c, d = server
    assert c.ask("/train", str(d / "loops"), 40) == ("/train", ["started"])
    a, p = c.wait(("/progress",), timeout=60)
    assert len(p) == 5 and p[1] > 0  # epoch, step, loss, val_elbo, lr
    a, st = c.ask("/status")  # answered while training
    assert st[0] == "training"
    assert c.ask("/train", str(d / "loops"))[0] == "/error"  # one run at a time
    assert c.ask("/stop") == ("/stop", [1])
    a, done = c.wait(("/train/done",), timeout=60)
    assert done[0] == "stopped" and "requested" in done[1]
    assert c.ask("/status")[1][0] == "stopped"


@pytest.mark.parametrize("message,reason", [
    (("/nope",), "unknown address /nope"),
    (("/bend", "abc"), "amount must be a number"),
    (("/bend", -1.0), "amount must be in"),
    (("/bend",), "missing amount"),
    (("/bend", 1.0, 0, "encoder"), "no decoder layer matches"),
    (("/encode", "/no/such.mid"), "no such file"),
    (("/encode", 3), "must be a string"),
    (("/decode", 0.1), "missing coordinate 2 of 2"),
    (("/generate", 1.5), "threshold must be in"),
    (("/interpolate", "/no/a.mid", "/no/b.mid"), "no such file"),
    (("/train", "/no/folder"), "no such file or folder"),
    (("/train", ".", 0), "epochs must be in"),
    (("/load", "/no/model"), "not a checkpoint folder"),
])
def test_bad_messages_get_an_error_and_the_server_carries_on(server, message, reason):
    c, _ = server
    a, args = c.ask(*message)
    assert a == "/error" and reason in args[0], args
    assert c.ask("/status")[0] == "/status"
