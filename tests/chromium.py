"""Debian's headless Chromium for tests: where it is (``chromium_binary``: CI must have it, a developer
may not), and a driver over the DevTools protocol (websocket-client, already a dependency of the
kubernetes client), a real browser for the step-up flow's end-to-end test.

Only what that test needs: open a page and wait for it to load, run a line of JavaScript, click, and
take a screenshot. Chromium is started with a private profile and a DevTools port of its own choosing
(read from ``DevToolsActivePort``), and killed (its process group) on close.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

DEADLINE = 60.0  # a loaded machine (10×) starts Chromium slowly


def chromium_binary() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it: apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


class Chromium:
    def __init__(self, binary: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="breakglass-chromium-"))
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                "--window-size=1000,700",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        try:
            self.socket = websocket.create_connection(self._page_socket(), timeout=DEADLINE, suppress_origin=True)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _page_socket(self) -> str:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if lines:
                try:
                    targets = requests.get(f"http://127.0.0.1:{lines[0]}/json/list", timeout=5).json()
                except (requests.RequestException, ValueError):
                    targets = []
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise RuntimeError("chromium's DevTools did not come up in time")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events seen meanwhile are kept in ``events``."""
        ident = next(self._ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})
            self.events.append(message)
        raise TimeoutError(method)

    def wait_for_load(self, after: int) -> None:
        """Until a ``Page.loadEventFired`` arrives later than event number ``after``."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if any(e.get("method") == "Page.loadEventFired" for e in self.events[after:]):
                return
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError("the page did not load")

    def open(self, url: str) -> None:
        mark = len(self.events)
        self.call("Page.navigate", url=url)
        self.wait_for_load(mark)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        """Click the element and wait for the page it leads to."""
        mark = len(self.events)
        clicked = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                                "if (!e) return false; e.click(); return true; })()")  # fmt: skip
        assert clicked, f"no {selector} on {self.evaluate('location.href')}"
        self.wait_for_load(mark)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "socket", None) is not None:
                self.socket.close()
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
