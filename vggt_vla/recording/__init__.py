"""Simulator episodes of a scripted expert turned into training data, one module per job:

    demo_dataset.py   write the demo dataset (scripts/make_demo_dataset.py)
    live_scenes.py    LiveSceneFrames: new demo-env scenes as a training Dataset, simulated when
                      training starts, never written (data.live)
    libero_demos.py   the resumable, multi-process LIBERO demonstration pipeline, geometry
                      included (scripts/generate_libero_demos.py)

and what they share: demo_env_episodes.py (the demo env's expert with noisy executed actions,
frames rendered from snapshots) and schema.py (the LeRobot features both writers use).

The package sits above vggt_vla.data (the writers, the item format) and vggt_vla.sim (the envs
and experts), which never import each other. Every recorder runs a scripted expert, keeps the
episodes it solved, records the expert's action while executing a noisy one (so the data covers
states slightly off the expert's path), and uses the LIBERO feature layout. To record another
simulator: a module with a `record_<sim>_episode` returning arrays per feature, and a loop that
hands them to a writer.
"""
