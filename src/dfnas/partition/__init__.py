"""Client partitions: who holds which train samples, computed once and shared by every
method so that comparisons are fair::

    from dfnas.partition import make_partition
    part = make_partition(labels, {"partitioner": "dirichlet", "num_clients": 10, "alpha": 0.5})
    part.train[0], part.test[0]   # client 0's local train and local test indices
"""

from dfnas.partition.partitioners import PARTITIONERS
from dfnas.partition.split import ClientPartition, make_partition

__all__ = ["PARTITIONERS", "ClientPartition", "make_partition"]
