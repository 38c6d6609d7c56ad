"""Fixtures for the real-browser tests: one JupyterLab server and one headless
Chromium per session, a fresh browser context + page per test.

Run:  python -m pytest tests/browser -q        (needs /usr/bin/chromium:
      bash .ci/install-browser.sh)
Screenshots/logs: $PARCOORD_ARTIFACTS or tests/browser/artifacts/.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_helpers():
    """Import ./jupyterlab.py under a private name: a plain ``import jupyterlab``
    would clash with the real JupyterLab package (which one wins depends on
    sys.path order and pytest's import mode)."""
    name = "parcoord_browser_jupyterlab"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("jupyterlab.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


helpers = _load_helpers()
CHROMIUM_ARGS, CHROMIUM_PATH = helpers.CHROMIUM_ARGS, helpers.CHROMIUM_PATH
JupyterLabServer, LabPage, artifacts_dir = helpers.JupyterLabServer, helpers.LabPage, helpers.artifacts_dir


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real JupyterLab in headless Chromium (Playwright)")


def pytest_collection_modifyitems(items):
    """Mark tests here as ``browser`` and run all browser tests last.

    Sync Playwright runs its asyncio loop in a greenlet, and while it is alive
    (the ``browser`` fixture is session-scoped) any other test in the process
    sees a running loop: ``asyncio.run()`` raises "cannot be called from a
    running event loop", and Python 3.11's AST checks can trip ("AST
    constructor recursion depth mismatch"). Running them last keeps the rest
    of the suite clean."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
    uses_browser = [
        item.get_closest_marker("browser") is not None or bool({"browser", "lab_page"} & set(item.fixturenames))
        for item in items
    ]
    items[:] = [i for i, b in zip(items, uses_browser) if not b] + [i for i, b in zip(items, uses_browser) if b]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets lab_page see if the test failed
    return report


def _require_chromium():
    if os.path.exists(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK):
        return
    msg = f"{CHROMIUM_PATH} not found: run `bash .ci/install-browser.sh` (Debian's chromium via apt-get)"
    if os.environ.get("CI"):
        pytest.fail(msg, pytrace=False)  # CI installs it, so a missing browser is a failure there
    pytest.skip(msg)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    _require_chromium()
    base = tmp_path_factory.mktemp("jupyterlab")
    # Kernels inherit the server env: make the work tree's parcoord_nb importable.
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    server = JupyterLabServer(base, log_path=artifacts_dir() / "jupyter-server.log", env={"PYTHONPATH": pythonpath})
    with server:
        yield server


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab_page(request, lab_server, browser):
    """A LabPage in a fresh browser context; kernels are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = LabPage(context.new_page(), lab_server)
    yield page
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
        try:
            page.screenshot(f"FAILED-{name}")
        except Exception:
            pass
        (artifacts_dir() / f"FAILED-{name}.console.txt").write_text("\n".join(page.console))
    context.close()
    lab_server.shutdown_all_kernels()
