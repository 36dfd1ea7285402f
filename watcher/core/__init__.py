"""The ground floor: the types, configuration, clock, store and evidence log every layer uses.

It imports nothing of the machinery above it (connectors, detectors, playbooks, the app)."""
