"""The one interface every TTS engine implements, and the table of engines by name.

An engine turns a checked ``Speech`` into WAV bytes (16-bit PCM at the engine's own rate); caching,
single-flight, the time limit and the concurrency bound are the service's job, not the engine's.
Adding an engine (a cloud one too) is one module with a class like ``EspeakEngine`` and one line in
``ENGINES``; its settings go into ``config.py`` as ``MEDIA_MGR_TTS_<NAME>_*``.
"""

from __future__ import annotations

import importlib
from typing import Final, Protocol

from media_mgr.config import Settings
from media_mgr.errors import InvalidRequest, Unavailable
from media_mgr.tts.speech import Speech

# name -> "module:Class"; the class has ``from_settings(settings)``. Imported only when enabled.
ENGINES: Final[dict[str, str]] = {
    "espeak": "media_mgr.tts.espeak:EspeakEngine",
}


class TtsEngine(Protocol):
    """What the TTS service needs from an engine."""

    name: str

    def check(self, speech: Speech) -> None:
        """Raise ``UnsupportedSpeech`` when the engine has no such voice or language; no I/O."""

    async def synthesize(self, speech: Speech) -> bytes:
        """The speech as a WAV file; ``TtsFailed`` when the engine fails. Stops all work when cancelled."""

    async def aclose(self) -> None:
        """Release what the engine holds (an HTTP client, a worker); called once at shutdown."""


class EngineFactory(Protocol):
    def from_settings(self, settings: Settings) -> TtsEngine: ...


class UnsupportedSpeech(InvalidRequest):
    """The engine has no such voice or language."""

    code = "tts_unsupported"


class TtsFailed(Unavailable):
    """The engine did not produce audio (crashed, refused, took too long); worth a retry later."""

    code = "tts_failed"


def load_engine(name: str, settings: Settings) -> TtsEngine:
    """Build the engine registered as ``name``; raises ``KeyError`` for a name not in ``ENGINES``."""
    module_name, _, class_name = ENGINES[name].partition(":")
    factory: EngineFactory = getattr(importlib.import_module(module_name), class_name)
    return factory.from_settings(settings)
