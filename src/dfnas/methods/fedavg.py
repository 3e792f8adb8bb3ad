"""FedAvg (McMahan et al. 2017): local SGD, sample-weighted mean. The base class is
exactly this algorithm; registering it under a name is all this file does."""

from dfnas.methods.base import FedMethod
from dfnas.methods.spec import METHODS


@METHODS.register("fedavg")
class FedAvg(FedMethod):
    """Local epochs of SGD with momentum on every sampled client; the server takes the
    n_k-weighted mean of the full state (weights and BN buffers)."""
