"""Doctor's controller: owns the resource map and resource states.

``resource_map`` indexes the cloud; ``changes`` applies and commits changes
in order; ``scheduler`` places instances; ``cloud`` is the embedded VIM that
operates on all of these; ``generate`` builds topologies of any size. It
reaches the store and the bus only through ``ports``.
"""
