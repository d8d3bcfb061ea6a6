"""Fencing: powering a failed host off through its BMC before anything of it is recovered (fence agents)."""
