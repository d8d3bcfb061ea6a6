"""The OpenStack VIM driver: Nova, Neutron and Keystone, as Doctor's own deployments run them.

Built in parts (the OpenStack issue): :mod:`.session` authenticates with
Keystone and finds the endpoints, :mod:`.inventory` reads Nova's and
Neutron's view into Vigil's domain. Keeping the map in sync by Nova's
versioned notifications, pushing the fault actions, and maintenance over
Nova come next; until then the server runs the embedded cloud.
"""
