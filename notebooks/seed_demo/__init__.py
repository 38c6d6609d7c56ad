"""Offline demo kit for the ``%%parallel`` notebook: three independent, I/O-bound tasks.

1. research API rate limiting from a local documentation server,
2. find performance bottlenecks in a bundled backend service,
3. find error-handling patterns in bundled microservice examples.
"""

from pathlib import Path

from .analysis import Finding, find_bottlenecks
from .patterns import PATTERN_KINDS, PatternExample, find_patterns
from .server import DocsServer, research_rate_limiting, start_docs_server

PACKAGE_DIR = Path(__file__).parent
DOCS_DIR = PACKAGE_DIR / "docs"  #: bundled rate-limiting pages served by start_docs_server()
BACKEND_SERVICE_DIR = PACKAGE_DIR / "backend_service"  #: service scanned by find_bottlenecks()
EXAMPLES_DIR = PACKAGE_DIR / "examples"  #: examples searched by find_patterns()

__all__ = [
    "BACKEND_SERVICE_DIR",
    "DOCS_DIR",
    "EXAMPLES_DIR",
    "PATTERN_KINDS",
    "DocsServer",
    "Finding",
    "PatternExample",
    "find_bottlenecks",
    "find_patterns",
    "research_rate_limiting",
    "start_docs_server",
]
