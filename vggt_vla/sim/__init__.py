"""Closed-loop environments for scoring policies: demo_env (the demo dataset's twin), libero
(LIBERO env wrapper) and libero_expert (its scripted expert). Recording their episodes into
datasets is vggt_vla/recording.py; this package never imports vggt_vla.data."""
