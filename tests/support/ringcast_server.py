"""The Python tests' one way to run ringcast: `ringcast serve` on ephemeral
loopback ports, ready once its ready line (one JSON object on stdout) names
every address; stopped (SIGKILL) by `stop()`, and at the latest when the
test process exits. The log (stderr) is kept for assertion messages."""
import atexit
import json
import os
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_live = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()


def ringcast_bin():
    return os.environ.get("RINGCAST_BIN", str(ROOT / "target/debug/ringcast"))


class RingcastServer:
    """Attributes once started: `ws_addr`, `api_addr`, `publisher_addr`
    (host:port), `ws_url`, `api_url`, `ready` (the whole object), `log`
    (stderr lines so far)."""

    def __init__(self, *args, timeout=10):
        self.proc = subprocess.Popen(
            [ringcast_bin(), "serve", "--port", "0", "--api-port", "0", "--publisher-port", "0",
             "--address", "127.0.0.1", "--no-pin", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "RUST_LOG": "info"})
        _live.add(self.proc)
        self.log = []
        self.ready = None
        got = threading.Event()

        def logs():
            for line in self.proc.stderr:
                self.log.append(line)

        def out():
            for line in self.proc.stdout:
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if isinstance(v, dict) and "ready" in v and self.ready is None:
                    self.ready = v["ready"]
                    got.set()

        threading.Thread(target=logs, daemon=True).start()
        threading.Thread(target=out, daemon=True).start()
        if not got.wait(timeout):
            self.stop()
            raise RuntimeError("ringcast did not start:\n" + "".join(self.log))
        self.ws_addr = self.ready["listen"]
        self.api_addr = self.ready["api"]
        self.publisher_addr = self.ready["publisher"]
        self.ws_url = f"ws://{self.ws_addr}/connection/websocket"
        self.api_url = f"http://{self.api_addr}/api"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live.discard(self.proc)
