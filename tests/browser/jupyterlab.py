"""Drive a real JupyterLab from tests: a private server plus a Playwright page wrapper.

    with JupyterLabServer(tmp_dir) as lab:
        lab.write_notebook("demo.ipynb", ["print(1)"])
        page = LabPage(browser_context.new_page(), lab)
        page.open_notebook("demo.ipynb")
        page.run_all()
        page.wait_for_idle()
        assert page.cell_output_text(0) == "1"

The server runs from ``sys.executable`` (same venv, so the kernels and the
ipywidgets lab extension are the ones installed there) with private Jupyter
config/data/runtime/settings dirs under the temp dir, so nothing from ~/.jupyter
or ~/.local leaks in and nothing is written there.

In pytest, use the fixtures from conftest.py (``lab_server``, ``browser``,
``lab_page``); conftest loads this file as ``parcoord_browser_jupyterlab``
because ``import jupyterlab`` would collide with the real package.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

import httpx
import nbformat

HERE = Path(__file__).resolve().parent
CHROMIUM_PATH = os.environ.get("PARCOORD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Settings written into the private user-settings dir (highest precedence after overrides).
_USER_SETTINGS = {
    # No news / update checks: offline and no toast covering the notebook.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # Keep every cell in the DOM so cell(i) means the i-th notebook cell.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def artifacts_dir() -> Path:
    """Where screenshots and logs go: $PARCOORD_ARTIFACTS or tests/browser/artifacts/."""
    path = Path(os.environ.get("PARCOORD_ARTIFACTS") or HERE / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: os.PathLike | str, cells: Iterable[str | dict]) -> Path:
    """Write a python3 notebook. ``cells``: source strings (code cells) or
    ``{"source": ..., "cell_type": "markdown"|"code"}`` dicts."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, str):
            cell = {"source": cell}
        maker = nbformat.v4.new_markdown_cell if cell.get("cell_type") == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(maker(cell["source"]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


class JupyterLabServer:
    """A private ``jupyter lab`` on 127.0.0.1:<free port> with a random token."""

    def __init__(
        self,
        base_dir: os.PathLike | str,
        *,
        log_path: os.PathLike | str | None = None,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ):
        self.base_dir = Path(base_dir)
        self.root_dir = self.base_dir / "notebooks"
        self.log_path = Path(log_path) if log_path else self.base_dir / "jupyter-server.log"
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self._pids: set[int] = set()  # kernel (and other child) pids seen, for orphan cleanup
        self.orphans_killed: list[int] = []  # pids _kill_orphans had to end at stop()
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=10)

    # -- lifecycle -----------------------------------------------------------------
    def _prepare_dirs(self) -> dict[str, str]:
        """Create the private dirs and settings; return the server's environment."""
        d = {name: self.base_dir / name for name in ("config", "data", "runtime", "ipython")}
        for p in [self.root_dir, *d.values()]:
            p.mkdir(parents=True, exist_ok=True)
        settings = d["config"] / "lab" / "user-settings"
        for plugin, values in _USER_SETTINGS.items():
            pkg, name = plugin.rsplit("/", 1)
            target = settings / pkg / f"{name}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        env = dict(os.environ)
        # JupyterLab reads these; also inherited by kernels, which is harmless.
        env.update(
            JUPYTER_CONFIG_DIR=str(d["config"]),
            JUPYTER_DATA_DIR=str(d["data"]),  # sys.prefix/share/jupyter stays on the path:
            JUPYTER_RUNTIME_DIR=str(d["runtime"]),  # lab extensions + kernelspec still found
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(d["config"] / "lab" / "workspaces"),
            IPYTHONDIR=str(d["ipython"]),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",  # silence debugpy's frozen-modules warning
            PYTHONUNBUFFERED="1",
        )
        for key in ("JUPYTER_TOKEN", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
            env.pop(key, None)
        env.update(self.extra_env)
        return env

    def start(self) -> "JupyterLabServer":
        env = self._prepare_dirs()
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser",
            "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",  # = ServerApp.token, minus the deprecation warning
            "--ServerApp.allow_root=True",  # CI and dev machines run as root
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp for commands/state
            *self.extra_args,
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root_dir, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                self._close_log()
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.http.get("/api/status").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"jupyter lab not answering /api/status after {self.startup_timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Shut kernels down via the API, SIGTERM the server (SIGKILL after 10 s),
        then end any kernel process still alive."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._remember_children()
            try:  # polite: shut kernels down through the API first
                self.shutdown_all_kernels()
            except httpx.HTTPError:
                pass
            self._remember_children()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self._kill_orphans()
        self.http.close()
        self._close_log()
        self.proc = None

    def __enter__(self) -> "JupyterLabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------
    def lab_url(self, path: str = "") -> str:
        """``/lab/<path>`` with the token appended, e.g. ``lab_url("tree/a.ipynb")``."""
        return f"{self.url}/lab/{path.lstrip('/')}" + ("&" if "?" in path else "?") + f"token={self.token}"

    def write_notebook(self, name: str, cells: Iterable[str | dict]) -> Path:
        """``write_notebook`` into the server's root dir; returns the path."""
        return write_notebook(self.root_dir / name, cells)

    def kernels(self) -> list[dict]:
        """Kernels as the server sees them (each has ``execution_state``)."""
        return self.http.get("/api/kernels").raise_for_status().json()

    def shutdown_all_kernels(self) -> None:
        self._remember_children()
        for s in self.http.get("/api/sessions").raise_for_status().json():
            self.http.delete(f"/api/sessions/{s['id']}", timeout=30)
        for k in self.kernels():
            self.http.delete(f"/api/kernels/{k['id']}", timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def _close_log(self) -> None:
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def _remember_children(self) -> None:
        try:
            import psutil

            self._pids.update(p.pid for p in psutil.Process(self.proc.pid).children(recursive=True))
        except Exception:  # psutil missing or server already gone
            pass

    def _kill_orphans(self) -> None:
        """Kernels run in their own session (jupyter_client), so a process-group kill
        misses them: end the children seen earlier and any process whose command
        line names our private runtime dir (``-f <runtime>/kernel-*.json``), which
        also finds kernels of a server that was SIGKILLed."""
        self.orphans_killed = []
        try:
            import psutil
        except ImportError:
            return
        runtime = str(self.base_dir / "runtime")
        procs = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmdline = p.info["cmdline"] or []
            if p.pid in self._pids or any(runtime in arg for arg in cmdline):
                procs.append(p)
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.orphans_killed = [p.pid for p in procs]


# Read the current notebook panel's state through the exposed app
# (--LabApp.expose_app_in_browser) and its DOM.
_STATE_JS = """(app) => {
  const w = app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content || !w.context) return null;
  const sc = w.sessionContext, k = sc.session ? sc.session.kernel : null;
  const ind = w.node.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = [...w.node.querySelectorAll('.jp-Notebook .jp-Cell')].map(
      c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  return {
    path: w.context.path, ready: sc.isReady,
    connection: k ? k.connectionStatus : null, kernel: k ? k.status : null,
    indicator: ind ? ind.dataset.status : null,
    running: prompts.flatMap((t, i) => t.includes('*') ? [i] : []),
  };
}"""


class LabPage:
    """A Playwright ``Page`` showing one notebook in JupyterLab.

    Selectors (JupyterLab 4.x): ``.jp-NotebookPanel`` (current one), ``.jp-Cell``,
    ``.jp-InputPrompt`` (``[*]:`` while queued/running), ``.jp-OutputArea-output``,
    ``.jp-Notebook-ExecutionIndicator[data-status]`` (toolbar kernel status),
    ``.jp-Dialog`` (kernel picker etc.).
    """

    PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

    def __init__(self, page, server: JupyterLabServer, *, default_timeout: float = 30.0):
        self.page = page
        self.server = server
        self.console: list[str] = []  # browser console lines, handy when a test fails
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.set_default_timeout(default_timeout * 1000)

    # -- locators ------------------------------------------------------------------
    @property
    def panel(self):
        return self.page.locator(self.PANEL)

    def cell(self, index: int):
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int):
        return self.cell(index).locator(".jp-OutputArea-output")

    # -- actions -------------------------------------------------------------------
    def open_notebook(self, name: str, timeout: float = 60.0) -> "LabPage":
        """Open ``name`` (relative to the server root) and wait until its kernel is idle."""
        # ?reset: start from an empty workspace, else tabs from earlier tests are restored
        # (the workspace lives on the server) and their notebooks start kernels too.
        self.page.goto(self.server.lab_url(f"tree/{quote(name)}?reset"), wait_until="domcontentloaded")
        self.page.wait_for_function("() => !!window.jupyterapp", timeout=timeout * 1000)
        self.page.evaluate("() => window.jupyterapp.restored")
        self.panel.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=timeout * 1000)
        self.wait_for_idle(timeout, path=name)
        return self

    def run_cell(self, index: int) -> None:
        """Make cell ``index`` the only selected cell and run it (``notebook:run-cell``,
        which does not advance). Returns once sent; follow with ``wait_for_idle()``."""
        self.cell(index).wait_for(state="attached")
        self._eval(
            "(app, i) => { const nb = app.shell.currentWidget.content;"
            " nb.mode = 'command'; nb.activeCellIndex = i; nb.deselectAll(); }",
            index,
        )
        self.command("notebook:run-cell")

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def interrupt_kernel(self) -> None:
        self.command("notebook:interrupt-kernel")

    def command(self, command_id: str, args: dict | None = None) -> None:
        """Start a JupyterLab command (e.g. ``notebook:restart-kernel``) without
        waiting for its promise: for run commands it resolves only when the cells
        finish. Unknown ids raise; a rejected promise lands in ``self.console``."""
        self._eval(
            "(app, [id, args]) => { if (!app.commands.hasCommand(id)) throw new Error('no command ' + id);"
            " app.commands.execute(id, args).catch(e => console.error('command ' + id + ' failed: ' + e)); }",
            [command_id, args or {}],
        )

    def wait_for_idle(self, timeout: float = 30.0, settle: float = 0.3, path: str | None = None) -> None:
        """Kernel connected and idle, toolbar indicator idle and no cell queued or
        running (``[*]``), all stable for ``settle`` s."""
        deadline = time.monotonic() + timeout
        since = None
        while True:
            self._accept_kernel_dialog()
            state = self.state()
            if self._is_idle(state, path):
                since = since or time.monotonic()
                if time.monotonic() - since >= settle:
                    return
            else:
                since = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"notebook not idle after {timeout}s: {state}")
            time.sleep(0.05)

    def state(self) -> dict | None:
        """What the current notebook panel says: path, session ready, kernel
        connection/status, toolbar indicator, indexes of ``[*]`` cells."""
        return self._eval(_STATE_JS)

    @staticmethod
    def _is_idle(state: dict | None, path: str | None) -> bool:
        return bool(
            state
            and (path is None or state["path"] == path)
            and state["ready"]
            and state["connection"] == "connected"
            and state["kernel"] == "idle"
            and state["indicator"] == "idle"
            and not state["running"]
        )

    def cell_output_text(self, index: int) -> str:
        """Visible text of all outputs of cell ``index`` (stream, text/plain, tracebacks)."""
        return "\n".join(t.strip() for t in self.output(index).all_inner_texts()).strip()

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        """Save ``<artifacts>/<name>.png`` and return its path."""
        path = artifacts_dir() / (re.sub(r"[^\w.-]+", "_", name) + ("" if name.endswith(".png") else ".png"))
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    # -- internals -----------------------------------------------------------------
    def _eval(self, fn: str, arg=None):
        return self.page.evaluate(f"(arg) => ({fn})(window.jupyterapp, arg)", arg)

    def _accept_kernel_dialog(self) -> None:
        """'Select Kernel' dialog: accept the preselected (default python3) kernel."""
        dialog = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
