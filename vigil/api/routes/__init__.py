"""One router per resource; ``vigil.api.app`` mounts them under ``/v1``."""
