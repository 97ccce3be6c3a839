"""The MelodyVAE control server: OSC over UDP, the Max for Live device's role.

Any DAW or patch that speaks OSC (Max's ``udpsend`` / ``udpreceive``) drives a
:class:`~.melody.MelodySession`: every message gets a reply on the sender's
host at ``reply_port``, under the same address (``/notes`` follows a melody), or
``/error`` with the reason; the server keeps running whatever it receives.
Training runs in the background and pushes ``/progress`` to whoever started it.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from ..errors import TatumFlowError
from .melody import MelodySession, notes_list

#: address -> (arguments, reply): the README's table is made from this.
MESSAGES = {
    "/status": ("", "/status state epoch step loss val_elbo lr message (always answered)"),
    "/train": ("folder [epochs=50] [recipe: new or old] [voice: mono or top]",
               "/train started; then /progress epoch step loss val_elbo lr while it trains; /train/done state message"),
    "/stop": ("", "/stop 1 (a training run will stop and keep its best weights) or 0 (none running)"),
    "/encode": ("file.mid", "/encode x y ... (the melody's pad coordinates)"),
    "/generate": ("[threshold=0.5] [noise=0] [seed=0]", "/generate file.mid, then /notes pitch start dur velocity ..."),
    "/decode": ("x y ... [threshold=0.5] [noise=0] [seed=0]", "/decode file.mid, then /notes ..."),
    "/interpolate": ("a.mid b.mid [steps=5] [threshold=0.5]", "/interpolate file.mid, then /notes ..."),
    "/bend": ("amount [seed=0] [layer ...]", "/bend n (how many decoder tensors were bent; all, or the named layers)"),
    "/reset": ("", "/reset 1 (the weights before bending, bit for bit)"),
    "/clear": ("[seed=0]", "/clear 1 (an untrained model of the same shape)"),
    "/load": ("checkpoint folder or shipped model name", "/load z_dim"),
    "/save": ("folder", "/save folder (safetensors + JSON config)"),
}


def _num(args, i: int, name: str, default=None, *, lo=None, hi=None, integer: bool = False):
    if i >= len(args):
        if default is None:
            raise TatumFlowError(f"missing {name}")
        return default
    v = args[i]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TatumFlowError(f"{name} must be a number, got {v!r}")
    if integer and int(v) != v:
        raise TatumFlowError(f"{name} must be a whole number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise TatumFlowError(f"{name} must be in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}, "
                             f"got {v}")
    return int(v) if integer else float(v)


def _str(args, i: int, name: str, default=None) -> str:
    if i >= len(args):
        if default is None:
            raise TatumFlowError(f"missing {name}")
        return default
    if not isinstance(args[i], str):
        raise TatumFlowError(f"{name} must be a string, got {args[i]!r}")
    return args[i]


class MelodyOSCServer:
    def __init__(self, session: MelodySession, *, host: str = "127.0.0.1", port: int = 7400,
                 reply_port: int = 7401, log: Callable[[str], None] = print):
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        self.session, self.reply_port, self.log = session, reply_port, log
        self._trainer_client: Optional[tuple[str, int]] = None
        d = Dispatcher()
        for address in MESSAGES:
            d.map(address, self._handle, needs_reply_address=True)
        d.set_default_handler(self._unknown, needs_reply_address=True)
        self.server = ThreadingOSCUDPServer((host, port), d)
        self.address = self.server.server_address
        session.listeners.append(self._progress)

    # ------------------------------------------------------------ replies
    def _send(self, host: str, address: str, args) -> None:
        from pythonosc.udp_client import SimpleUDPClient

        SimpleUDPClient(host, self.reply_port).send_message(address, args)

    def _progress(self, st: dict) -> None:
        if self._trainer_client is None:
            return
        host = self._trainer_client[0]
        if st["state"] == "training":
            self._send(host, "/progress", [st["epoch"], st["step"], _f(st["loss"]), _f(st["val_elbo"]), _f(st["lr"])])
        else:
            self._send(host, "/train/done", [st["state"], st["message"]])

    def _unknown(self, client, address, *args) -> None:
        self._send(client[0], "/error", [f"unknown address {address} (known: {', '.join(MESSAGES)})"])

    def _handle(self, client, address, *args) -> None:
        try:
            reply = getattr(self, "on_" + address.strip("/"))(client, list(args))
            for addr, values in reply:
                self._send(client[0], addr, values)
        except Exception as exc:  # every failure is an /error reply; the server carries on
            reason = str(exc) if isinstance(exc, (TatumFlowError, ValueError, OSError)) else \
                f"{type(exc).__name__}: {exc}"
            self._send(client[0], "/error", [f"{address}: {reason}"])

    # ------------------------------------------------------------ messages
    def on_status(self, client, args):
        st = self.session.status()
        return [("/status", [st["state"], st["epoch"], st["step"], _f(st["loss"]), _f(st["val_elbo"]), _f(st["lr"]),
                             st["message"]])]

    def on_train(self, client, args):
        data = _str(args, 0, "folder")
        epochs = _num(args, 1, "epochs", 50, lo=1, integer=True)
        recipe = _str(args, 2, "recipe", "new")
        voice = _str(args, 3, "voice", "mono")
        self._trainer_client = client
        self.session.train(data, epochs=epochs, recipe=recipe, voice=voice)
        return [("/train", ["started"])]

    def on_stop(self, client, args):
        return [("/stop", [int(self.session.stop())])]

    def on_encode(self, client, args):
        return [("/encode", self.session.encode(_file(args, 0, "file")))]

    def _melody(self, address, path, perf):
        return [(address, [str(path)]), ("/notes", notes_list(perf))]

    def on_generate(self, client, args):
        path, perf = self.session.generate(None, threshold=_num(args, 0, "threshold", 0.5, lo=0.001, hi=0.999),
                                           noise=_num(args, 1, "noise", 0.0, lo=0.0),
                                           seed=_num(args, 2, "seed", 0, lo=0, integer=True))
        return self._melody("/generate", path, perf)

    def on_decode(self, client, args):
        d = self.session.model.config.z_dim
        z = [_num(args, i, f"coordinate {i + 1} of {d}") for i in range(d)]
        path, perf = self.session.generate(z, threshold=_num(args, d, "threshold", 0.5, lo=0.001, hi=0.999),
                                           noise=_num(args, d + 1, "noise", 0.0, lo=0.0),
                                           seed=_num(args, d + 2, "seed", 0, lo=0, integer=True))
        return self._melody("/decode", path, perf)

    def on_interpolate(self, client, args):
        path, perf = self.session.interpolate(_file(args, 0, "first file"), _file(args, 1, "second file"),
                                              _num(args, 2, "steps", 5, lo=2, hi=64, integer=True),
                                              threshold=_num(args, 3, "threshold", 0.5, lo=0.001, hi=0.999))
        return self._melody("/interpolate", path, perf)

    def on_bend(self, client, args):
        layers = [_str(args, i, f"layer {i - 1}") for i in range(2, len(args))] or None
        names = self.session.bend(_num(args, 0, "amount", lo=0.0, hi=100.0),
                                  seed=_num(args, 1, "seed", 0, lo=0, integer=True), layers=layers)
        return [("/bend", [len(names)])]

    def on_reset(self, client, args):
        self.session.reset()
        return [("/reset", [1])]

    def on_clear(self, client, args):
        self.session.clear(_num(args, 0, "seed", 0, lo=0, integer=True))
        return [("/clear", [1])]

    def on_load(self, client, args):
        return [("/load", [self.session.load(_str(args, 0, "checkpoint"))["z_dim"]])]

    def on_save(self, client, args):
        return [("/save", [str(self.session.save(_str(args, 0, "folder")))])]

    # ------------------------------------------------------------ running
    def serve_forever(self) -> None:
        self.server.serve_forever()

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return t

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _f(v) -> float:
    return float("nan") if v is None else float(v)


def _file(args, i: int, name: str) -> str:
    from pathlib import Path

    path = _str(args, i, name)
    if not Path(path).is_file():
        raise TatumFlowError(f"{path}: no such file")
    return path


def table() -> str:
    """The message set as a Markdown table (the README's)."""
    rows = ["| address | arguments | reply |", "|---|---|---|"]
    rows += [f"| `{a}` | {args or '—'} | {reply} |" for a, (args, reply) in MESSAGES.items()]
    return "\n".join(rows + ["| anything else, or bad arguments | | `/error` reason |"])
