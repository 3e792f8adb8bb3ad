"""dfnas: a reproducible benchmark for federated neural architecture search.

The library behind the Snakemake workflow: datasets, partitions, models and search
spaces, methods, the federated loop and resource accounting. Rules reach it through
the ``dfnas`` command line (``python -m dfnas --help``).
"""

__version__ = "0.1.0"
