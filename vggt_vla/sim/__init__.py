"""Closed-loop environments for scoring policies (demo_env: the demo dataset's twin)."""
