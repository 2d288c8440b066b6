"""Launched by tests under `accelerate launch --multi_gpu --num_processes 2` (gloo on CPU): for each
config given, the optimizer steps it asks for (DDP reports a missing gradient reduction at the
step after it), then every rank writes its parameters so the test can compare
them. One launch serves several configs: the process start-up is the slow part.

    python tests/accelerate_step.py OUT_PREFIX CONFIG [CONFIG ...]   # writes OUT_PREFIX.<i>.rank<r>.pt
"""

import sys

import torch

from vggt_vla.config import load_config
from vggt_vla.training.trainer import Trainer

out_prefix, configs = sys.argv[1], sys.argv[2:]
for i, config in enumerate(configs):
    trainer = Trainer(load_config(config), progress=False)
    trainer.fit()
    model = trainer.accelerator.unwrap_model(trainer.model)
    rank = trainer.accelerator.process_index
    params = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
    torch.save({"params": params, "step": trainer.step, "world": trainer.accelerator.num_processes},
               f"{out_prefix}.{i}.rank{rank}.pt")
