"""Closed-loop environments and their scripted experts: demo_env (the toy tabletop, the demo
dataset's twin, with its expert), libero (LIBERO env wrapper) and libero_expert (its scripted
expert, with the skills in libero_skills). Envs and experts only: episodes are run by vggt_vla/closed_loop.py and recorded into
datasets by vggt_vla/recording/; this package never imports vggt_vla.data."""
