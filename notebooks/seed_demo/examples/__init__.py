"""Error-handling patterns for Python microservices, used as the corpus of the pattern search."""
