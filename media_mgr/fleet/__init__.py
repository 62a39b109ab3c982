"""The fleet: every instance (process) registered in PostgreSQL, and control that reaches the owner.

``instance.Fleet`` registers this instance, beats, and declares silent ones gone (closing what they
left, once); ``peers.Peers`` forwards a request to the instance that holds a live thing.
"""
