"""Closed-loop environments for scoring policies: demo_env (the demo dataset's twin), libero
(LIBERO env wrapper), libero_expert (its scripted expert) and libero_demos (demonstrations
generated with that expert)."""
