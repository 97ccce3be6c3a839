"""Run by tests/test_training.py under torchrun: 2 CPU processes, gloo backend."""

import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, __file__.rsplit("/", 2)[0])  # tests/, for tiny_models
from tiny_models import TinyData, TinyRegressor  # noqa: E402

from tatumflow.training import TrainConfig, Trainer  # noqa: E402

dist.init_process_group("gloo")
torch.manual_seed(0)
model = TinyRegressor()
cfg = TrainConfig(max_steps=6, batch_size=8, warmup_steps=2, lr=1e-2, save_every=1000, log_every=1,
                  tensorboard=False, device="cpu", seed=3)
tr = Trainer(model, cfg, TinyData(), out_dir=sys.argv[1], progress=False)
tr.fit()
if dist.get_rank() == 0:
    with open(sys.argv[1] + "/ddp.json", "w") as fh:
        json.dump({"loss": [h["loss"] for h in tr.history],
                   "params": {k: v.tolist() for k, v in model.state_dict().items()}}, fh)
dist.barrier()  # both ranks done before either tears gloo down
dist.destroy_process_group()
# Leave without interpreter finalization: gloo's worker threads can still be
# unwinding when it runs, and on a busy core a rank then aborts ("terminate called
# without an active exception"; pytorch/pytorch#190489). Everything is written.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
