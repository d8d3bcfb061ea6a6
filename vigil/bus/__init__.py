"""Event bus adapters: how resource events reach the engines that consume them.

``memory`` is the in-process bus of the embedded default. A broker-backed
bus for scale-out implements the same ``publish`` and ``subscribe``.
"""
