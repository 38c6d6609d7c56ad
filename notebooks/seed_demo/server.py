"""A local documentation server and the rate-limiting research task that reads it.

The server stands in for "the web" so the notebook runs offline: it serves the
bundled pages in ``docs/`` on 127.0.0.1 and delays every response, because the
point of the demo is that I/O-bound tasks overlap when they run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

DOCS_DIR = Path(__file__).with_name("docs")
INDEX_PATH = "/index.json"
_PAGE_SUFFIXES = {".md": "text/markdown; charset=utf-8", ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class _Page:
    path: str
    title: str
    content_type: str
    body: bytes


class _DocsHTTPServer(ThreadingHTTPServer):
    # Handler threads must not keep the notebook kernel alive or block close().
    daemon_threads = True

    def __init__(self, pages: dict[str, _Page], latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _DocsHandler)
        self.pages = pages
        self.latency = latency


class _DocsHandler(BaseHTTPRequestHandler):
    server: _DocsHTTPServer
    # HTTP/1.1 lets the client reuse connections; every response sets Content-Length.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - name required by BaseHTTPRequestHandler
        # Sleep before answering so each request costs a realistic network round trip.
        time.sleep(self.server.latency)
        path = urlsplit(self.path).path
        if path in ("/", INDEX_PATH):
            index = {
                "title": "API rate limiting notes",
                "pages": [{"path": p.path, "title": p.title} for p in self.server.pages.values()],
            }
            self._send(200, "application/json", json.dumps(index, indent=2).encode())
        elif (page := self.server.pages.get(path)) is not None:
            self._send(200, page.content_type, page.body)
        else:
            self._send(404, "text/plain; charset=utf-8", f"not found: {path}\n".encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # Access logs would otherwise be printed into the notebook's output cells.
        pass


class DocsServer:
    """A running documentation server on 127.0.0.1; use as a context manager or call close()."""

    def __init__(self, httpd: _DocsHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.latency = httpd.latency
        self.pages: list[str] = list(httpd.pages)

    @property
    def urls(self) -> list[str]:
        """Absolute URLs of all pages."""
        return [self.url + path for path in self.pages]

    def close(self) -> None:
        """Stop serving and release the port (safe to call twice)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> DocsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DocsServer(url={self.url!r}, pages={len(self.pages)}, latency={self.latency})"


def _load_pages(docs_dir: Path) -> dict[str, _Page]:
    pages: dict[str, _Page] = {}
    for file in sorted(docs_dir.iterdir()):
        content_type = _PAGE_SUFFIXES.get(file.suffix)
        if content_type is None:
            continue
        text = file.read_text(encoding="utf-8")
        path = f"/docs/{file.name}"
        pages[path] = _Page(path, _title_of(text, default=file.stem), content_type, text.encode())
    return pages


def _title_of(text: str, default: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, re.MULTILINE) or re.search(r"<title>(.*?)</title>", text, re.S)
    return match.group(1).strip() if match else default


def start_docs_server(latency: float = 0.3, *, docs_dir: str | Path | None = None) -> DocsServer:
    """Serve the bundled rate-limiting pages on a free 127.0.0.1 port, each response delayed by `latency` s."""
    pages = _load_pages(Path(docs_dir) if docs_dir is not None else DOCS_DIR)
    if not pages:
        raise ValueError(f"no .md or .html pages in {docs_dir or DOCS_DIR}")
    httpd = _DocsHTTPServer(pages, latency)
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},  # short poll so close() returns promptly
        name="seed-demo-docs-server",
        daemon=True,
    )
    thread.start()
    return DocsServer(httpd, thread)


# --- research task -----------------------------------------------------------------

# Names are matched loosely ("token-bucket", "Token buckets") because prose varies.
_ALGORITHMS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "token bucket": r"\btoken[\s-]+buckets?\b",
        "leaky bucket": r"\bleaky[\s-]+buckets?\b",
        "fixed window counter": r"\bfixed[\s-]+window(?:[\s-]+counters?)?\b",
        "sliding window log": r"\bsliding[\s-]+window[\s-]+logs?\b",
        "sliding window counter": r"\bsliding[\s-]+window[\s-]+counters?\b",
        "GCRA": r"\bGCRA\b|\bgeneric cell rate algorithm\b",
    }.items()
}
# Header names are only taken from code spans, where the pages write field names.
_HEADER_SPAN = re.compile(r"`((?:X-)?RateLimit(?:-[A-Za-z]+)*|Retry-After)`")
_RECOMMENDATION_HEADING = re.compile(r"^#{2,6}\s+(recommendations|best practices)\s*$", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


def _recommendations(text: str) -> list[str]:
    """List items of the page's "Recommendations" section, one sentence each."""
    items: list[str] = []
    in_section = False
    for line in text.splitlines():
        if _HEADING.match(line):
            in_section = bool(_RECOMMENDATION_HEADING.match(line))
        elif in_section and (item := _LIST_ITEM.match(line)):
            sentence = re.split(r"(?<=[.!?])\s", item.group(1).strip(), maxsplit=1)[0]
            items.append(sentence.rstrip("."))
    return items


def summarize_pages(pages: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Summarise fetched (url, text) pages into sources, algorithms, headers and cited recommendations."""
    first_seen: dict[str, tuple[int, int]] = {}
    headers: list[str] = []
    recommendations: list[str] = []
    for page_no, (url, text) in enumerate(pages):
        for name, pattern in _ALGORITHMS.items():
            match = pattern.search(text)
            if match and name not in first_seen:
                first_seen[name] = (page_no, match.start())
        headers.extend(h for h in _HEADER_SPAN.findall(text) if h not in headers)
        recommendations.extend(f"{item} (source: {url})" for item in _recommendations(text))
    return {
        "sources": [url for url, _ in pages],
        # Order of first mention keeps the summary readable as a narrative.
        "algorithms": sorted(first_seen, key=first_seen.__getitem__),
        "headers": headers,
        "recommendations": recommendations,
    }


async def research_rate_limiting(
    base_url: str, *, client: httpx.AsyncClient | None = None
) -> dict[str, list[str]]:
    """Fetch the index and all pages concurrently from `base_url` and summarise rate-limiting practice."""
    own_client = client is None
    if client is None:
        # trust_env=False: the pages live on loopback, so proxy settings must not reroute them.
        client = httpx.AsyncClient(timeout=10.0, trust_env=False)
    try:
        index = await client.get(urljoin(base_url, INDEX_PATH))
        index.raise_for_status()
        urls = [urljoin(base_url, entry["path"]) for entry in index.json()["pages"]]
        responses = await asyncio.gather(*(client.get(url) for url in urls))
    finally:
        if own_client:
            await client.aclose()
    for response in responses:
        response.raise_for_status()
    return summarize_pages([(url, response.text) for url, response in zip(urls, responses)])
