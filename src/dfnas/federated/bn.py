"""Federated BatchNorm re-estimation, offered to methods through ``ServerContext``.

A network whose architecture just changed (DFNAS's child, cut out of the supernet) carries
running statistics accumulated over other paths. DSNAS resets and re-estimates them; here
each client computes them on its local data (forward passes only, cumulative average) and
the server takes the sample-weighted mean. The forward FLOPs and the bytes of the BN
buffers exchanged are added to the round's costs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from dfnas.cost import forward_flops, tensor_bytes
from dfnas.federated.aggregation import StreamingMean
from dfnas.federated.data import DeviceData


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v
        for k, v in model.state_dict().items()
        if k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }


@dataclass
class ServerContext:
    """The server's handle on this round's clients, for work beyond aggregation."""

    data: DeviceData
    train_idx: list[torch.Tensor]
    clients: list[int]
    row: dict  # this round's history row: costs added here are accounted
    batch_size: int

    @torch.no_grad()
    def recalibrate_bn(self, model: nn.Module, in_shape: tuple[int, int, int]) -> None:
        """Reset BN statistics and re-estimate them federatedly over this round's clients
        (one pass over each client's local train data)."""
        if not self.clients:
            return
        agg = StreamingMean()
        per_sample = forward_flops(model, in_shape)
        gen = torch.Generator().manual_seed(0)
        for k in self.clients:
            local = copy.deepcopy(model).train()
            for m in local.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                    m.momentum = None  # cumulative average over the pass
            for x, _ in self.data.batches(self.train_idx[k], self.batch_size, gen, epochs=1):
                local(x)
                self.row["train_flops"] += per_sample * len(x)
            buffers = bn_buffers(local)
            agg.add(buffers, len(self.train_idx[k]))
            self.row["bytes_up"] += tensor_bytes(buffers)
        # clients need the new network's aggregated weights before they can run it
        self.row["bytes_down"] += tensor_bytes(model.state_dict()) * len(self.clients)
        model.load_state_dict(agg.result(like=model.state_dict()), strict=False)
