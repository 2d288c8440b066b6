"""Closed-loop environments for scoring policies: demo_env (the demo dataset's twin), libero
(LIBERO env wrapper) and libero_expert (its scripted expert and demo generation)."""
