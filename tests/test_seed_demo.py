"""Tests for the offline demo kit in notebooks/seed_demo."""

from __future__ import annotations

import ast
import asyncio
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

NOTEBOOKS_DIR = Path(__file__).parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOKS_DIR))

import seed_demo  # noqa: E402
from seed_demo import (  # noqa: E402
    BACKEND_SERVICE_DIR,
    EXAMPLES_DIR,
    PATTERN_KINDS,
    find_bottlenecks,
    find_patterns,
    research_rate_limiting,
    start_docs_server,
)
from seed_demo.analysis import KINDS, scan_source  # noqa: E402
from seed_demo.patterns import scan_patterns  # noqa: E402

LATENCY = 0.3
MARKER = re.compile(r"#\s*planted:\s*(\w+)")


@pytest.fixture(scope="module")
def server() -> Iterator[seed_demo.DocsServer]:
    with start_docs_server(latency=LATENCY) as srv:
        yield srv


def _client() -> httpx.AsyncClient:
    # The server is on loopback; proxy variables from the environment must not apply.
    return httpx.AsyncClient(timeout=10.0, trust_env=False)


def planted() -> set[tuple[str, str, int]]:
    """(kind, file, line) of every `# planted: <kind>` marker in the bundled service."""
    expected = set()
    for file in sorted(BACKEND_SERVICE_DIR.rglob("*.py")):
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if match := MARKER.search(line):
                expected.add((match.group(1), file.relative_to(BACKEND_SERVICE_DIR).as_posix(), lineno))
    return expected


# --- docs server ----------------------------------------------------------------------


def test_server_binds_loopback_and_lists_pages(server: seed_demo.DocsServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert 4 <= len(server.pages) <= 6
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        index = client.get(server.url + "/index.json").json()
        assert [entry["path"] for entry in index["pages"]] == server.pages
        for path in server.pages:
            response = client.get(server.url + path)
            assert response.status_code == 200
            assert "rate" in response.text.lower()
        assert client.get(server.url + "/missing.md").status_code == 404


def test_single_request_takes_at_least_the_latency(server: seed_demo.DocsServer) -> None:
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        started = time.perf_counter()
        client.get(server.urls[0]).raise_for_status()
        assert time.perf_counter() - started >= LATENCY


def test_concurrent_fetch_is_much_faster_than_sequential(server: seed_demo.DocsServer) -> None:
    async def fetch_all() -> float:
        async with _client() as client:
            started = time.perf_counter()
            responses = await asyncio.gather(*(client.get(url) for url in server.urls))
            elapsed = time.perf_counter() - started
        assert all(r.status_code == 200 for r in responses)
        return elapsed

    sequential = LATENCY * len(server.pages)
    assert asyncio.run(fetch_all()) < 0.8 * sequential


def test_close_releases_the_server() -> None:
    srv = start_docs_server(latency=0)
    srv.close()
    srv.close()  # idempotent
    with pytest.raises(httpx.TransportError):
        httpx.get(srv.url + "/index.json", trust_env=False, timeout=2.0)


# --- research task --------------------------------------------------------------------


def test_research_summary_reports_algorithms_and_cites_sources(server: seed_demo.DocsServer) -> None:
    summary = asyncio.run(research_rate_limiting(server.url))
    assert summary["sources"] == server.urls
    for algorithm in ("token bucket", "leaky bucket", "sliding window log", "sliding window counter"):
        assert algorithm in summary["algorithms"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(summary["headers"])
    assert len(summary["recommendations"]) >= len(server.pages)
    citations = [re.search(r"\(source: (\S+)\)$", rec) for rec in summary["recommendations"]]
    assert all(citations)
    cited = {match.group(1) for match in citations if match}
    assert cited == set(server.urls)


def test_research_summary_is_derived_from_the_fetched_text(tmp_path: Path) -> None:
    (tmp_path / "only.md").write_text(
        "# Leaky buckets\n\nA leaky-bucket smooths bursts.\n\n## Recommendations\n\n"
        "- Queue at most a few requests. Longer queues time out.\n",
        encoding="utf-8",
    )
    with start_docs_server(latency=0, docs_dir=tmp_path) as srv:
        summary = asyncio.run(research_rate_limiting(srv.url))
    assert summary["algorithms"] == ["leaky bucket"]
    assert summary["headers"] == []
    assert summary["recommendations"] == [f"Queue at most a few requests (source: {srv.url}/docs/only.md)"]


# --- bottleneck analysis --------------------------------------------------------------


def test_every_planted_kind_has_a_marker() -> None:
    assert {kind for kind, _, _ in planted()} == set(KINDS)


def test_bottleneck_finder_reports_exactly_the_planted_issues() -> None:
    findings = find_bottlenecks(BACKEND_SERVICE_DIR)
    # Equality, not inclusion: anything extra would be a false positive.
    assert {(f.kind, f.file, f.line) for f in findings} == planted()
    assert len(findings) == len(planted())


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_found_at_marker(kind: str) -> None:
    expected = sorted((file, line) for k, file, line in planted() if k == kind)
    found = sorted((f.file, f.line) for f in find_bottlenecks(BACKEND_SERVICE_DIR) if f.kind == kind)
    assert found == expected


def test_findings_are_readable() -> None:
    for finding in find_bottlenecks(BACKEND_SERVICE_DIR):
        text = str(finding)
        assert f"{finding.file}:{finding.line}" in text and finding.function in text
        assert finding.recommendation


def test_no_false_positives_in_examples() -> None:
    # The examples sleep in sync code, await asyncio.sleep and loop a lot: none is a bottleneck.
    assert find_bottlenecks(EXAMPLES_DIR) == []


def test_bottleneck_detection_generalises() -> None:
    source = textwrap.dedent(
        """
        import json
        import requests
        from time import sleep as pause

        async def handler(session, ids):
            pause(1)
            requests.get("http://upstream")
            users = [session.get_user(i) for i in ids]

        def copy(obj):
            return json.loads(json.dumps(obj))

        def decode(raw):
            data = json.loads(raw)
            return json.loads(data)

        def fine(conn, raw):
            first = conn.fetchone("SELECT 1 WHERE id = ?", raw)
            raw = raw + 1
            second = conn.fetchone("SELECT 1 WHERE id = ?", raw)
            return first, second
        """
    )
    found = [(f.kind, f.line) for f in scan_source(source)]
    assert found == [
        ("blocking_in_async", 7),
        ("blocking_in_async", 8),
        ("n_plus_one", 9),
        ("double_json", 12),
        ("double_json", 16),
    ]


# --- pattern search -------------------------------------------------------------------


def test_pattern_finder_finds_each_kind() -> None:
    patterns = find_patterns(EXAMPLES_DIR)
    assert set(patterns) == set(PATTERN_KINDS)
    for kind in PATTERN_KINDS:
        assert patterns[kind], f"no {kind} example found"
        for example in patterns[kind]:
            source = (EXAMPLES_DIR / example.file).read_text(encoding="utf-8")
            assert example.line <= len(source.splitlines())
            # Snippets are excerpts of the real file ("..." marks a cut).
            for line in example.snippet.splitlines():
                assert line == "..." or line.strip() in source


def test_pattern_details() -> None:
    patterns = find_patterns(EXAMPLES_DIR)
    hierarchy = patterns["exception_hierarchy"]
    assert [(e.file, e.name.split()[0]) for e in hierarchy] == [("exceptions.py", "ServiceError")]
    assert "class UpstreamTimeout(ExternalServiceError):" in hierarchy[0].snippet

    retries = {e.name.split(":")[0] for e in patterns["retry_backoff"]}
    assert retries == {"retry_with_backoff", "retry_async"}  # fixed-interval polling is not backoff

    breakers = patterns["circuit_breaker"]
    assert [e.name.split(":")[0] for e in breakers] == ["CircuitBreaker"]  # not the state enum

    propagation = patterns["context_propagation"]
    assert all(" from exc" in e.name for e in propagation)  # `from None` drops context: excluded
    assert {e.file for e in propagation} == {"context.py", "timeout.py"}


def test_bundled_sources_are_valid_python() -> None:
    files = list(BACKEND_SERVICE_DIR.glob("*.py")) + list(EXAMPLES_DIR.glob("*.py"))
    assert len(files) >= 8
    for file in files:
        ast.parse(file.read_text(encoding="utf-8"), filename=str(file))


def test_pattern_detection_generalises() -> None:
    source = textwrap.dedent(
        """
        import time

        class AppError(RuntimeError):
            pass

        class DbError(AppError):
            pass

        def sync_all(items, send):
            for item in items:
                delay = 0.5
                while True:
                    try:
                        send(item)
                        break
                    except OSError as exc:
                        time.sleep(delay)
                        delay *= 2

        class Breaker:
            def __init__(self):
                self.state = "closed"
                self.failures = 0

            def trip(self):
                self.failures += 1
                self.state = "open"

        def load(path):
            try:
                return open(path).read()
            except OSError as exc:
                raise DbError(path) from exc
        """
    )
    found = {
        kind: [(e.line, e.name.split(":")[0].split()[0]) for e in examples]
        for kind, examples in scan_patterns(source).items()
    }
    assert found == {
        "exception_hierarchy": [(4, "AppError")],
        "retry_backoff": [(13, "sync_all")],  # the inner while loop, not the outer for
        "circuit_breaker": [(21, "Breaker")],
        "context_propagation": [(34, "load")],
    }
