"""The operator console: a web page served by media-mgr itself, over the documented REST API."""
