"""vggt-vla: a geometry-grounded Vision-Language-Action policy.

The batch walks one way: dataset -> batch dict -> encoders -> tokens -> backbone
-> action queries -> action head -> loss or actions. See docs/architecture.md.
"""

__version__ = "0.1.0"
