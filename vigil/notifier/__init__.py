"""Doctor's notifier: alarm lifecycle, subscriptions, and delivery.

``alarms`` keeps the alarm book; ``subscriptions`` the registry and its
matching; ``formats`` renders Aodh and ETSI SOL 003 payloads; ``retry``
decides retries by exception type; ``service`` ties them into the pipeline
match → render → deliver → retry, recording every delivery in the outbox.
HTTP itself is an adapter (``vigil.delivery``) behind the ``Sender`` port.
"""
