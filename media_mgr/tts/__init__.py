"""Text to speech for ``tts://`` Media-Names: engines behind one interface, audio cached as media.

``speech`` checks what a request asks for (Kazoo's Text, Voice, Language, Engine), ``engine`` is
the interface every engine implements, ``espeak`` the local default engine, ``service`` the cache
that synthesises once per (engine, voice, language, text) across every instance on the database.
"""
