"""``media-mgr serve --workers N``: N full service processes sharing the HTTP and SHOUT ports.

The supervisor (``supervisor.py``) binds both ports once, starts the embedded PostgreSQL when there is
one, applies the migrations and settles the URL secret, then runs N workers (``worker.py``): each a
new interpreter handed the listening sockets, so no running event loop is ever forked. It restarts a
worker that dies, stops all of them on SIGTERM/SIGINT, and gives up in one line when one cannot start.
"""

from media_mgr.supervisor.supervisor import Supervisor, SupervisorFailed

__all__ = ["Supervisor", "SupervisorFailed"]
