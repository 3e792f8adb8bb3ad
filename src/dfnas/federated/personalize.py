"""Personalized evaluation, the same for every method: each client fine-tunes the final
global model on its local train split and is tested on its local test split."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dfnas.federated.config import TrainConfig
from dfnas.federated.data import DeviceData, index_tensor
from dfnas.federated.evaluation import evaluate
from dfnas.federated.precision import autocast_forward
from dfnas.federated.sampling import client_seed
from dfnas.partition import ClientPartition

# a round index no training round uses, so fine-tuning draws its own random stream
_PERSONALIZE_STREAM = 1_000_000


def personalize(
    model: nn.Module, data: DeviceData, part: ClientPartition, cfg: TrainConfig, seed: int
) -> list[dict]:
    """One row per client with a local test split: accuracy before and after fine-tuning."""
    device = data.x_train.device
    rows = []
    for k, (train_idx, test_idx) in enumerate(zip(part.train, part.test, strict=True)):
        if len(test_idx) == 0:
            continue
        te = index_tensor(test_idx, device)
        x_te, y_te = data.x_train[te], data.y_train[te]
        before, _ = evaluate(model, data, cfg.eval_batch_size, x_te, y_te)
        after = before
        if cfg.personalize_epochs > 0 and len(train_idx) > 0:
            local = copy.deepcopy(model).train()
            opt = torch.optim.SGD(
                local.parameters(),
                lr=cfg.personalize_lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
            )
            gen = torch.Generator().manual_seed(client_seed(seed, _PERSONALIZE_STREAM, k))
            tr = index_tensor(train_idx, device)
            with autocast_forward(local, cfg.precision):  # fine-tuning trains as clients do
                for x, y in data.batches(tr, cfg.batch_size, gen, cfg.personalize_epochs):
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(local(x), y).backward()
                    opt.step()
            after, _ = evaluate(local, data, cfg.eval_batch_size, x_te, y_te)
        rows.append(
            {
                "client": k,
                "local_train_samples": int(len(train_idx)),
                "local_test_samples": int(len(test_idx)),
                "accuracy_global_model": before,
                "accuracy_personalized": after,
            }
        )
    return rows


def summarize(rows: list[dict]) -> dict[str, float]:
    if not rows:
        nan = float("nan")
        return {"personalized_accuracy_mean": nan, "personalized_accuracy_std": nan}
    after = np.array([r["accuracy_personalized"] for r in rows])
    before = np.array([r["accuracy_global_model"] for r in rows])
    return {
        "personalized_accuracy_mean": float(after.mean()),
        "personalized_accuracy_std": float(after.std()),
        "local_accuracy_mean": float(before.mean()),
        "local_accuracy_std": float(before.std()),
    }
