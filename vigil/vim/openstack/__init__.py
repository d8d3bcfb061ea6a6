"""The OpenStack VIM driver: Nova, Neutron and Keystone, as Doctor's own deployments run them.

Built in parts (the OpenStack issue): :mod:`.session` authenticates with
Keystone and finds the endpoints; :mod:`.inventory` reads Nova's and
Neutron's view into Vigil's domain (the map's first state with
``vim.driver: openstack``); :mod:`.push` pushes the inspector's fault
actions to Nova and Neutron after the notification; :mod:`.notifications`
and :mod:`.consumer` parse and consume Nova's versioned notifications. Next:
applying those to the map (and a periodic reconciliation), the API's
operations through Nova, and maintenance over Nova.
"""
