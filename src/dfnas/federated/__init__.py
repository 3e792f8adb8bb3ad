"""The federated simulation engine: ``dfnas.federated.loop.run_federated`` runs any
registered method; the other modules are its parts (sampling, aggregation, data,
evaluation, checkpoints, personalization)."""
