"""Architecture search parts: the ShuffleNetV2 supernet, the DSNAS step, child derivation
under budgets, and latency tables. The methods that use them live in ``dfnas.methods``."""
