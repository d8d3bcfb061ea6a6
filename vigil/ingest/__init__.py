"""Adapters that bring others' monitors' events in: the AMQP queue Zabbix publishes to (:mod:`.amqp`).

The parsing and mapping are the monitor engine's (:mod:`vigil.monitor.ingest`); the HTTP endpoints are
:mod:`vigil.api.routes.ingest`.
"""
