"""Order service used as the subject of the bottleneck analysis (scanned as source, not run by the demo)."""
