"""Launched by tests/test_training.py under `accelerate launch --cpu --num_processes 2`: one
optimizer step, then every rank writes its parameters so the test can compare them."""

import sys

import torch

from vggt_vla.config import load_config
from vggt_vla.training.trainer import Trainer

config, out_prefix = sys.argv[1], sys.argv[2]
trainer = Trainer(load_config(config), progress=False)
trainer.fit(stop_after=1)
model = trainer.accelerator.unwrap_model(trainer.model)
rank = trainer.accelerator.process_index
params = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
torch.save({"params": params, "step": trainer.step, "world": trainer.accelerator.num_processes},
           f"{out_prefix}.rank{rank}.pt")
