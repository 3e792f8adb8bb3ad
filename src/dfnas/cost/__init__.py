"""Resource accounting: FLOPs counted from operations, exact bytes, seconds, memory."""

from dfnas.cost.flops import count_params, forward_flops, train_flops
from dfnas.cost.meters import Stopwatch, peak_memory_bytes, tensor_bytes

__all__ = [
    "Stopwatch",
    "count_params",
    "forward_flops",
    "peak_memory_bytes",
    "tensor_bytes",
    "train_flops",
]
