"""Architecture search parts: the ShuffleNetV2 supernet, the DSNAS step, child derivation
under budgets, and latency tables. The methods that use them live in ``dfnas.methods``.

The search networks that run as models register into ``dfnas.models.MODELS`` here, so
importing ``dfnas.search`` (as every method and the workflow do) makes them buildable by
name."""

from dfnas.search import darts_supernet  # noqa: F401  (registers darts_search)
