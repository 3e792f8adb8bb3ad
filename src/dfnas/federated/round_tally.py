"""A round's costs and training loss, summed over the client replies in sampled order,
and the divergence guard: a client whose loss, or a server whose aggregated weights, stop
being finite end the run with one line naming the round (and client), before anything is
checkpointed or written."""

from __future__ import annotations

import torch

from dfnas.cost import tensor_bytes
from dfnas.errors import TrainingError
from dfnas.federated.clients import ClientReply


class RoundTally:
    """The round's costs and training loss, summed over replies in sampled order."""

    def __init__(self, row: dict, device: torch.device, r: int) -> None:
        self.row, self.device, self.round = row, device, r
        self.loss_sum, self.samples = torch.zeros((), device=device), 0
        row["client_memory_bytes"] = 0
        if device.type == "cuda":
            row["client_gpu_peak_bytes"] = row["peak_memory_bytes"] = 0

    def add(self, reply: ClientReply) -> None:
        row = self.row
        total = sum(reply.losses, torch.zeros((), device=self.device))
        if not torch.isfinite(total):
            raise TrainingError(
                f"round {self.round + 1}, client {reply.client}: training loss is "
                f"{total.item()}; the run diverged and nothing was written (lower training.lr, "
                "or set training.grad_clip)"
            )
        self.loss_sum += total
        self.samples += reply.samples
        row["train_flops"] += reply.flops
        row["bytes_up"] += tensor_bytes(reply.upload)
        row["client_seconds"] += reply.seconds
        row["client_cpu_seconds"] += reply.cpu_seconds
        row["client_memory_bytes"] = max(row["client_memory_bytes"], reply.memory_bytes)
        if self.device.type == "cuda":  # the allocator's peak was reset per client
            row["client_gpu_peak_bytes"] = max(row["client_gpu_peak_bytes"], reply.gpu_peak)
            row["peak_memory_bytes"] = max(
                row["peak_memory_bytes"], reply.gpu_peak_before, reply.gpu_peak
            )

    def close(self) -> None:
        row, samples = self.row, self.samples
        row["train_loss"] = (self.loss_sum / samples).item() if samples else float("nan")
        row["samples"] = samples
        row["test_accuracy"], row["test_loss"] = None, None


def check_finite_state(state: dict[str, torch.Tensor], r: int) -> None:
    """The server's new weights, checked before they are kept or checkpointed."""
    for name, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise TrainingError(
                f"round {r + 1}: the aggregated '{name}' is not finite; the run diverged and "
                "nothing was written (lower training.lr, or set training.grad_clip)"
            )
