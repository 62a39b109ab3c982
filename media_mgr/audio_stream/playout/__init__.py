"""Stored media into a live call: how far ahead to send, pacing, checkpoints and barge-in.

``buffering.BufferPolicy`` picks the lead (the seed's presets, grown by measured jitter);
``pacer.Pacer`` keeps the module's playout clock from its acknowledgements; ``player.Player`` is
the task that reads an item and sends it through the dialect's ``PlayEncoder``.
"""
