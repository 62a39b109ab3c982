"""mod_audio_stream's far end: the WebSocket that FreeSWITCH's audio-streaming modules connect to.

Read in this order (imports run down the list; ``lint-imports`` keeps it so):

- ``listener.py``   the audio_stream listener on its own port (picows): each socket a ``Socket``
- ``endpoint.py``   the same on the HTTP port (a Starlette WebSocket route)
- ``connection.py`` one socket's state machine, whichever carries it; audio's hot path
- ``transport.py``  what a connection needs of its socket, and the handshake's admission
- ``service.py``    ``AudioStreamService``: sessions, recordings, events, REST play/clear/issue-url;
                    an async context manager whose exit ends every session
- ``publisher.py``  stream events: counted, logged, published on AMQP without making a stream wait
- ``registry.py``   live sessions, reconnects finding theirs, URLs refused for a while
- ``session.py``    one stream of one call, across reconnects: format, capture, playout
- ``arrivals.py``   the session's hot path: frames kept with their arrival times, placed together
- ``capture/``      audio in -> the recording: ``clock`` (media clock, gaps), ``jitter`` (RFC 3550),
                    ``assembler`` (tracks side by side), ``pipeline`` (all of it, to the sink)
- ``playout/``      media out -> the module: ``buffering`` (lead presets), ``pacer`` (virtual
                    playout clock, checkpoints), ``player`` (the task that sends)
- ``dialects/``     the wire, one class per dialect behind ``base.Dialect``: ``voipbit`` (JSON),
                    ``binary`` (amigniter, mod_audio_fork)
- ``formats.py``    ``StreamFormat`` and what URLs and metadata say about it
- ``flood.py``      a peer may not send faster than real time; ``auth.py`` who may connect
- ``events.py``     the typed events every dialect turns frames into

G.711 and WAV-to-PCM conversions live in ``media_mgr.audio`` (``g711``, ``wav_pcm``).
"""
