"""A real OpenStack on this machine for Vigil's tests and demos: ``vigil testbed openstack``.

Keystone 30, Nova 34 (fake virt driver, one ``nova-compute`` per fake host
``compute-N``), Placement 16 and Neutron 29 (ML2 without agents), all from
PyPI in a virtual environment of their own, on the machine's MariaDB and
RabbitMQ, listening on 127.0.0.1 only. The recipe, its measurements and
the obstacles it works around are in ``shared/openstack.md``.

Modules, one concern each: :mod:`.layout` (paths, names, ports, pins),
:mod:`.install` (the venv), :mod:`.backing` (databases and vhost),
:mod:`.config` (configuration and credential files), :mod:`.schema`
(migrations), :mod:`.keystone` (bootstrap, service users, catalog,
tokens), :mod:`.services` (processes), :mod:`.glance` (the image service
stand-in), :mod:`.client` (an admin client of the stack), :mod:`.stack`
(up, status, down), :mod:`.cli`. ``files/`` holds what runs inside the
stack's venv, not Vigil's: the ``bindall`` ML2 driver, the WSGI entry
points and the notification tap.
"""
