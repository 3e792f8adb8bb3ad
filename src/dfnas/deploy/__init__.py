"""Deployment: a run's network as a portable artifact (``export``)."""
