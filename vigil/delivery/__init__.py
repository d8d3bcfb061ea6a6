"""Delivery adapters: how rendered notifications leave Vigil.

``http`` implements the notifier's ``Sender`` port
(``vigil.notifier.ports``) over aiohttp: one shared session, kept-alive
connections per receiver, and the receiver's answer turned into the
notifier's retry decision.
"""
