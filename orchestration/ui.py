"""The Dagster UI, driven from code: start the webserver on a home, ask it questions, take screenshots.

Used by the UI test and by `zeroforge ui-snapshots`, which writes the
README's screenshots. The webserver is `dagster dev` (webserver + daemon +
code server) in its own session, so the whole process group can be stopped
(it ignores a lone SIGTERM to its parent). The browser is headless Chromium
driven over the DevTools protocol (`websockets`, a dagster-webserver
dependency): the Dagster UI is a JavaScript app, so pages are read after
they rendered the expected text, not when the HTML arrived.

    with Webserver(home, port) as ui, Browser() as browser:
        ui.graphql("{ assetNodes { assetKey { path } } }")
        browser.open(ui.url + "/asset-groups", wait_for=["vzero"]).screenshot("graph.png")

`serve_dev(port)` is `zeroforge ui` / `make ui` in the foreground: `dagster dev`
in its own process group, with SIGINT and SIGTERM forwarded to the whole group
and a SIGKILL after a short grace period. Started from a script without job
control, a child inherits SIGINT ignored and `dagster dev` would not stop on
Ctrl-C or `kill`; here the signal reaches every process of the group.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from orchestration.backfill import LAUNCH_BACKFILL, LOCATION_NAME, REPOSITORY_NAME, partition_set_name

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars", "--mute-audio",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class Webserver:
    """`dagster dev -w workspace.yaml` on `home` (ZEROFORGE_HOME; DAGSTER_HOME = home/dagster)."""

    def __init__(self, home: Path, port: int | None = None, log: Path | None = None, nice: int = 0):
        self.home, self.port = Path(home), port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log) if log else self.home / "webserver.log"
        self.nice, self.proc = nice, None

    def start(self, timeout_s: float = 300) -> Webserver:
        env = {**os.environ, "ZEROFORGE_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster"),
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        dagster = str(Path(sys.executable).parent / "dagster")
        argv = [dagster, "dev", "-h", "127.0.0.1", "-p", str(self.port), "-w", str(REPO_ROOT / "workspace.yaml")]
        if self.nice:
            argv = ["nice", "-n", str(self.nice), *argv]
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.proc.returncode}; see {self.log}")
            try:
                data = self.graphql("{ workspaceOrError { __typename ... on Workspace { locationEntries { name "
                                    "locationOrLoadError { __typename } } } } }")
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and all(e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                                   for e in entries):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the webserver at {self.url} did not load the code location in {timeout_s:.0f} s; see {self.log}")
            time.sleep(1)

    def graphql(self, query: str, variables: dict | None = None, timeout_s: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.url + "/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            out = json.loads(resp.read())
        if out.get("errors"):
            raise RuntimeError(f"GraphQL errors: {out['errors']}")
        return out["data"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc:
            self._log.close()

    def __enter__(self) -> Webserver:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def dev_argv(port: int) -> list[str]:
    dagster = str(Path(sys.executable).parent / "dagster")
    return [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO_ROOT / "workspace.yaml")]


def serve_dev(port: int = 3000, argv: list[str] | None = None, grace_s: float = 5.0) -> int:
    """Run `dagster dev` (or `argv`) until it exits or this process gets SIGINT/SIGTERM; returns its exit code.

    The server runs in a new session, so its webserver, daemon and code server share one process group.
    A signal to this process is sent on to that group as SIGTERM (SIGINT too, for `dagster dev`'s own
    clean shutdown); whatever is still running `grace_s` later is SIGKILLed. Signal handlers are installed
    before the child starts, so the child does not inherit an ignored SIGINT.
    """
    stop: list[int] = []

    def forward(signum, _frame):
        stop.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(argv or dev_argv(port), cwd=REPO_ROOT, start_new_session=True)
        while proc.poll() is None and not stop:
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        if stop:
            print(f"zeroforge ui: {signal.Signals(stop[0]).name}: stopping dagster dev (process group {proc.pid})",
                  flush=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and _group_alive(proc.pid):
                proc.poll()
                time.sleep(0.1)
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what did not stop in time, the children included
            except ProcessLookupError:
                pass
        rc = proc.wait()
        return 128 + stop[0] if stop else rc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Browser:
    """Headless Chromium over the DevTools protocol: open, wait for text, click, screenshot, read the DOM."""

    def __init__(self, chromium: str | None = None, size: tuple[int, int] = (1400, 900), nice: int = 0):
        self.chromium = chromium or find_chromium()
        if not self.chromium:
            raise FileNotFoundError("no chromium on PATH: `apt-get install -y chromium`")
        self.size, self.nice = size, nice
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="zeroforge-chromium-")
        argv = [self.chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        if self.nice:
            argv = ["nice", "-n", str(self.nice), *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(p for p in pages if p.get("type") == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1], deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ws.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, timeout_s: float = 60, **params) -> dict:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, js: str):
        res = self.send("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript error: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def text(self) -> str:
        return self.eval("document.body ? document.body.innerText : ''") or ""

    def dom(self) -> str:
        return self.eval("document.documentElement.outerHTML") or ""

    def open(self, url: str, wait_for: list[str] = (), timeout_s: float = 90, settle_s: float = 1.5) -> Browser:
        self.send("Page.navigate", url=url)
        return self.wait_for(wait_for, timeout_s, settle_s)

    def wait_for(self, texts: list[str] = (), timeout_s: float = 90, settle_s: float = 1.5) -> Browser:
        """Until every string in `texts` is in the page's visible text (then `settle_s` for images and layout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            body = self.text()
            missing = [t for t in texts if t not in body]
            if not missing and self.eval("document.readyState") == "complete":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {missing}; it shows: {body[:1500]!r}")
            time.sleep(0.5)
        time.sleep(settle_s)
        return self

    def click_text(self, text: str, selector: str = "button, a, [role=button], span, div") -> bool:
        """Click the innermost element matching `selector` whose own text is exactly `text`."""
        js = f"""(() => {{
            const want = {json.dumps(text)};
            const els = [...document.querySelectorAll({json.dumps(selector)})].filter(e => e.innerText && e.innerText.trim() === want);
            const el = els.find(e => ![...e.children].some(c => c.innerText && c.innerText.trim() === want)) || els[0];
            if (!el) return false;
            el.scrollIntoView({{block: 'center'}});
            el.click();
            return true;
        }})()"""
        return bool(self.eval(js))

    def resize(self, width: int, height: int) -> Browser:
        self.size = (width, height)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        return self

    def click_all(self, selector: str) -> int:
        """Click every element matching a CSS selector (e.g. the graph's group expanders); returns how many."""
        js = f"""(() => {{
            const els = [...document.querySelectorAll({json.dumps(selector)})];
            els.forEach(e => (e.closest('button, [role=button]') || e.parentElement || e).dispatchEvent(
                new MouseEvent('click', {{bubbles: true, cancelable: true, view: window}})));
            return els.length;
        }})()"""
        return int(self.eval(js) or 0)

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        params = {"format": "png"}
        if full_page:
            h = int(self.eval("Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)") or self.size[1])
            params["clip"] = {"x": 0, "y": 0, "width": self.size[0], "height": min(h, 4000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


# -- what the UI test and the README screenshots look at ------------------------------------------------------

ASSET_KEYS = "{ assetNodes { assetKey { path } } }"
PARTITIONS = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
  ... on AssetNode { partitionKeys } } }"""
CHECK_EXECUTIONS = """query($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 50) {
    status partition evaluation { success } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status partitionNames } ... on Error { message } } }"""


def launch_backfill(ui: Webserver, recipe: str, partitions: list[str], run_config: dict | None = None) -> str:
    """The UI's "Launch backfill" (from failure) over `partitions`, sent to the webserver; returns the backfill id."""
    params = {"selector": {"partitionSetName": partition_set_name(recipe),
                           "repositorySelector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}},
              "partitionNames": partitions, "fromFailure": True, "title": f"rerun failed {recipe} iterations"}
    if run_config:
        params["runConfigData"] = run_config
    out = ui.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if out["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"the webserver refused the backfill: {out}")
    return out["backfillId"]


def wait_for_backfill(ui: Webserver, backfill_id: str, timeout_s: float = 1800) -> str:
    from orchestration.backfill import TERMINAL_BACKFILL

    deadline = time.monotonic() + timeout_s
    while True:
        status = ui.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status in TERMINAL_BACKFILL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout_s:.0f} s")
        time.sleep(3)


def _expand_graph_groups(browser: Browser) -> None:
    for _ in range(5):  # each click re-renders the graph; expand until no collapsed group is left
        if not browser.click_all('[aria-label="unfold_more"]'):
            return
        time.sleep(1.5)


def _click_metadata_markdown(browser: Browser, label: str) -> bool:
    """Open the "[Show Markdown]" dialog of the metadata row `label` (where zeroforge's plots live)."""
    js = f"""(() => {{
        const row = [...document.querySelectorAll('tr')].find(r => r.cells.length && r.cells[0].innerText.trim() === {json.dumps(label)});
        const link = row && [...row.querySelectorAll('a')].find(e => e.innerText.trim() === '[Show Markdown]');
        if (!link) return false;
        link.click();
        return true;
    }})()"""
    return bool(browser.eval(js))


def ui_screenshots(ui: Webserver, browser: Browser, out: Path, recipe: str = "vzero", partition: str = "iter-0001",
                   backfill_id: str | None = None) -> dict[str, Path]:
    """The README's views: asset graph, a partition's metadata with its plot, the checks, the backfill."""
    out = Path(out)
    shots: dict[str, Path] = {}
    size = browser.size
    browser.resize(1200, 560)  # the graph is wide and flat: a short viewport makes it fill the picture
    # the recipe that ran, on its own group page: every asset of one iteration, expanded, with its status
    group = f"{ui.url}/locations/{urllib.parse.quote(LOCATION_NAME, safe='')}/asset-groups/{recipe}"
    browser.open(group, wait_for=["task_set", "solver_checkpoint", "benchmark_scores"])
    _expand_graph_groups(browser)
    browser.click_all('[aria-label="panel_show_right"]')  # hide the group tree: more room for the graph
    browser.open(group, wait_for=["task_set", "solver_checkpoint", "benchmark_scores"], settle_s=3)
    shots["asset_graph"] = browser.screenshot(out / "asset_graph.png")
    browser.resize(*size)

    # every group at once: a recipe that never ran shows its missing first iteration, not a vacuous green
    browser.open(f"{ui.url}/asset-groups", wait_for=[recipe, "foundation"], settle_s=3)
    shots["global_lineage"] = browser.screenshot(out / "global_lineage.png")

    browser.open(f"{ui.url}/assets/{recipe}/task_set?view=partitions&partition={partition}", wait_for=[partition, "c histogram"])
    shots["partition_metadata"] = browser.screenshot(out / "partition_metadata.png")
    if _click_metadata_markdown(browser, f"c histogram, {partition} (PNG)"):
        browser.wait_for([], settle_s=2)
        shots["partition_plot"] = browser.screenshot(out / "partition_plot.png")

    browser.open(f"{ui.url}/assets/{recipe}/task_set?view=checks", wait_for=["task_set_is_valid", "blocking"])
    shots["checks"] = browser.screenshot(out / "checks.png")

    # how to launch the next iteration: the job page says it (add the partition, then materialize; or the sensor)
    job = f"{ui.url}/locations/{urllib.parse.quote(LOCATION_NAME, safe='')}/jobs/{recipe}_iteration"
    browser.open(job, wait_for=[f"{recipe}_iteration"], settle_s=3)
    shots["launch"] = browser.screenshot(out / "launch.png")

    if backfill_id:
        browser.open(f"{ui.url}/runs/b/{backfill_id}?tab=runs", wait_for=["Partition selection", "Status"], settle_s=3)
        shots["backfill"] = browser.screenshot(out / "backfill.png")
    return shots
