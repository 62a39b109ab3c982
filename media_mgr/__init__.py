"""media-mgr: a Kazoo-style media manager for FreeSWITCH fleets."""

__version__ = "0.1.0"
