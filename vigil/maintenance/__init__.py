"""The admin tool's engine: NFVI maintenance sessions (Doctor's maintenance use case, Fenix's API).

``planner`` decides which host to empty first and where instances go;
``workflow`` runs one asyncio task per session through the states of
``vigil.domain.maintenance``; ``actions`` are the pluggable per-host
maintenance actions; ``service`` is what the API calls. The engine reaches
the cloud, the notifier and the store only through ``ports``.
"""
