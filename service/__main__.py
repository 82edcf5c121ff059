"""``python -m service``: run the API on ``DLAB_HOST``:``DLAB_PORT`` (what the embedded stack
starts; ``dlab serve`` is the same with flags)."""

from service.server import serve

serve()
