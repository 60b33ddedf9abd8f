"""Load built pages in headless Chromium and report every request and console error (offline check).

    with Browser() as b:
        report = b.load(Path("_build/html/book/02_performance.html"))
        report.external            # requests that left the build directory (must be empty)
        report.errors              # console errors and uncaught exceptions (must be empty)
        b.evaluate("document.title")

Talks to Debian's ``chromium`` over the DevTools protocol (websocket-client),
so no browser download is ever needed. Every request whose URL is not a
``file://`` path inside the build directory (or ``data:``/``blob:``/``about:``)
counts as external; the browser is started with networking disabled
(``--host-resolver-rules`` maps every host to nothing), so such a request
could not succeed either.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-default-apps", "--disable-extensions", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--metrics-recording-only", "--mute-audio",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files", "--remote-debugging-port=0")
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome-error:", "devtools:")


class BrowserError(RuntimeError):
    """Chromium is missing or did not answer."""


def find_chromium() -> str | None:
    for name in (os.environ.get("CIRCUITNB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@dataclass
class PageReport:
    url: str
    requests: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    external: list = field(default_factory=list)


class Browser:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, root: Path | None = None, timeout: float = 30.0):
        self.root = Path(root).resolve() if root else None
        self.timeout = timeout
        self._id = 0
        self.events: list = []

    def __enter__(self) -> "Browser":
        import websocket
        exe = find_chromium()
        if exe is None:
            raise BrowserError("no Chromium found (Debian: apt-get install chromium; or set CIRCUITNB_CHROMIUM)")
        self._profile = tempfile.mkdtemp(prefix="circuitnb-chromium-")
        self._proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.time() + self.timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.time() > deadline or self._proc.poll() is not None:
                self.__exit__(None, None, None)
                raise BrowserError(f"Chromium did not start ({exe})")
            time.sleep(0.1)
        port = port_file.read_text().split("\n")[0]
        targets = self._http(port)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                               suppress_origin=True)
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        return self

    def _http(self, port: str) -> list:
        import urllib.request
        deadline = time.time() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                if time.time() > deadline:
                    raise BrowserError("Chromium's DevTools endpoint did not answer") from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        try:
            if getattr(self, "_ws", None) is not None:
                self._ws.close()
        finally:
            if getattr(self, "_proc", None) is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
            shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    def call(self, method: str, **params):
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        self._id += 1
        my_id = self._id
        self._ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise BrowserError(f"{method}: no answer in {self.timeout} s")

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` (lets scripts and late requests run)."""
        end = time.time() + seconds
        self._ws.settimeout(0.1)
        try:
            while time.time() < end:
                try:
                    msg = json.loads(self._ws.recv())
                except Exception:                  # websocket timeout: nothing arrived
                    continue
                if "method" in msg:
                    self.events.append(msg)
        finally:
            self._ws.settimeout(self.timeout)

    def evaluate(self, expression: str):
        """Evaluate JavaScript in the page and return its (JSON) value; a JS exception raises."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"JavaScript error: {res['exceptionDetails'].get('text')} in {expression[:80]!r}")
        return res["result"].get("value")

    def load(self, path: Path, settle: float = 1.5) -> PageReport:
        """Open a page, wait for it to load and settle, and report its requests and errors."""
        path = Path(path).resolve()
        root = self.root or path.parent
        self.events.clear()
        url = path.as_uri()
        self.call("Page.navigate", url=url)
        deadline = time.time() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.time() > deadline:
                raise BrowserError(f"{path}: no load event in {self.timeout} s")
            self.drain(0.2)
        self.drain(settle)
        return self.report(url, root)

    def report(self, url: str, root: Path) -> PageReport:
        rep = PageReport(url=url)
        prefix = root.resolve().as_uri()
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                rep.requests.append(u)
                if not (u.startswith(prefix) or u.startswith(LOCAL_SCHEMES)):
                    rep.external.append(u)
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                rep.errors.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                rep.errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                        for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                rep.errors.append(f"exception: {d.get('exception', {}).get('description', d.get('text'))}")
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                rep.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return rep


def check_site(html_root: Path, pages=None) -> list[PageReport]:
    """Load every page (default: all ``*.html`` under ``html_root`` except search/genindex) and report."""
    html_root = Path(html_root).resolve()
    pages = pages or sorted(p for p in html_root.rglob("*.html")
                            if p.name not in ("search.html", "genindex.html") and "_static" not in p.parts)
    with Browser(root=html_root) as b:
        return [b.load(p) for p in pages]
