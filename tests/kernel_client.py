"""A real Jupyter kernel for tests: start it, run cells, collect every iopub message.

Tests talk to the kernel the way JupyterLab does (jupyter_client over ZMQ), so what
they see is what a user would see: outputs, errors, widget comm messages, timing.
"""

from __future__ import annotations

import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class CellResult:
    """What one execute_request produced."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    @property
    def error(self) -> dict[str, Any] | None:
        c = self.reply["content"]
        return c if c["status"] == "error" else None

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr")

    def data(self, mime: str) -> list[Any]:
        """Every output of this mime type (display_data / execute_result), in order."""
        return [m["content"]["data"][mime] for m in self.of_type("display_data", "execute_result", "update_display_data")
                if mime in m["content"].get("data", {})]

    @property
    def text(self) -> str:
        """All text a reader would see: streams, text/plain outputs and the error."""
        parts = [self.stdout, self.stderr, *self.data("text/plain")]
        if self.error:
            parts.append(f"{self.error['ename']}: {self.error['evalue']}")
            parts.extend(self.error.get("traceback", []))
        return "\n".join(parts)


class Kernel:
    """A running ipykernel with a blocking client; use as a context manager."""

    def __init__(self, python: str = sys.executable, extra_env: dict[str, str] | None = None) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_cmd = None  # type: ignore[attr-defined]
        self._python = python
        self._env = extra_env or {}
        self.client: Any = None

    def __enter__(self) -> Kernel:
        import os

        env = {**os.environ, **self._env, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        self.km.kernel_spec.argv = [self._python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]  # type: ignore[union-attr]
        self.km.start_kernel(env=env)
        self.client = self.km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.stop_channels()
        self.km.shutdown_kernel(now=True)

    def execute(self, code: str, timeout: float = 60.0, *, interrupt_after: float | None = None) -> CellResult:
        """Run one cell and wait until the kernel is idle again; return everything it sent."""
        client = self.client
        started = time.perf_counter()
        msg_id = client.execute(code, allow_stdin=False)
        messages: list[dict[str, Any]] = []
        deadline = started + timeout
        interrupted = False
        idle = False
        while not idle:
            if interrupt_after is not None and not interrupted and time.perf_counter() - started >= interrupt_after:
                self.km.interrupt_kernel()
                interrupted = True
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish within {timeout}s:\n{code}")
            wait = min(remaining, 0.05) if interrupt_after is not None and not interrupted else remaining
            try:
                msg = client.get_iopub_msg(timeout=wait)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                if msg["msg_type"] == "comm_msg":  # widget updates from background runs
                    messages.append(msg)
                continue
            msg["_t"] = time.perf_counter() - started
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            else:
                messages.append(msg)
        reply = client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=timeout)
        return CellResult(reply=reply, messages=messages, started=started, finished=time.perf_counter())

    def value(self, expr: str) -> Any:
        """Evaluate an expression in the kernel and return it (through repr/literal_eval)."""
        import ast

        r = self.execute(f"print(repr({expr}))")
        assert r.status == "ok", r.text
        return ast.literal_eval(r.stdout.strip())
