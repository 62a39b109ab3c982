"""Placed chunks of one or two tracks -> the recording's PCM, in order, silence where nothing came; pure.

Each track has a window of PCM starting at ``head`` (what was already handed to the recording).
``put`` writes a chunk at its position, so a burst lands where it belongs and a gap stays zeros.
``take`` hands over ``[head, upto)``, two mono tracks interleaved into stereo (first track left).
Audio placed before ``head`` arrived too late to be recorded and is dropped and counted;
the window is at most ``max_ahead`` frames, so memory stays bounded whatever the peer sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Track:
    frame_bytes: int
    window: bytearray = field(default_factory=bytearray)
    end: int = 0  # absolute frame just after the furthest audio placed


class Assembler:
    def __init__(self, track_channels: list[int], *, max_ahead: int) -> None:
        if not 1 <= len(track_channels) <= 2 or any(c not in (1, 2) for c in track_channels):
            raise ValueError("one track (mono or stereo) or two mono tracks")
        if len(track_channels) == 2 and track_channels != [1, 1]:
            raise ValueError("two tracks must both be mono")
        self.tracks = [_Track(2 * c) for c in track_channels]
        self.channels = sum(track_channels)
        self.max_ahead = max_ahead
        self.head = 0
        self.dropped_frames = 0

    @property
    def frame_bytes(self) -> int:
        return 2 * self.channels

    def put(self, track: int, position: int, pcm: bytes) -> int:
        """Write ``pcm`` at ``position`` (frames); returns how many frames had to be dropped."""
        t = self.tracks[track]
        window = t.window
        size = len(pcm)
        if (position - self.head) * t.frame_bytes == len(window) and not size % t.frame_bytes:
            frames = size // t.frame_bytes  # the common case: the next whole frames in order, in room
            if position + frames <= self.head + self.max_ahead:
                window += pcm
                if position + frames > t.end:
                    t.end = position + frames
                return 0
        frames = size // t.frame_bytes
        pcm = pcm[: frames * t.frame_bytes]
        dropped = 0
        if position < self.head:  # arrived after that stretch was recorded
            cut = min(frames, self.head - position)
            pcm, position, frames, dropped = pcm[cut * t.frame_bytes :], self.head, frames - cut, cut
        if position + frames > self.head + self.max_ahead:
            keep = max(0, self.head + self.max_ahead - position)
            dropped += frames - keep
            pcm, frames = pcm[: keep * t.frame_bytes], keep
        if frames:
            start = (position - self.head) * t.frame_bytes
            window = t.window
            if start == len(window):  # the common case, the next chunk in order: appended
                window += pcm
            else:
                stop = start + len(pcm)
                if len(window) < stop:
                    window.extend(bytes(stop - len(window)))
                window[start:stop] = pcm
            t.end = max(t.end, position + frames)
        self.dropped_frames += dropped
        return dropped

    @property
    def complete(self) -> int:
        """Frames every track has reached: safe to hand over without cutting a track short."""
        return max(self.head, min(t.end for t in self.tracks))

    @property
    def furthest(self) -> int:
        return max(self.head, max(t.end for t in self.tracks))

    @property
    def lag(self) -> int:
        """How far the slowest track is behind the fastest, in frames."""
        return self.furthest - self.complete

    def take(self, upto: int) -> bytes:
        """The recording's bytes for ``[head, upto)``; ``head`` moves to ``upto``."""
        frames = max(0, min(upto, self.head + self.max_ahead) - self.head)
        if not frames:
            return b""
        parts = []
        for t in self.tracks:
            n = frames * t.frame_bytes
            part = bytes(t.window[:n])
            if len(part) < n:
                part += bytes(n - len(part))
            del t.window[:n]
            parts.append(part)
        self.head += frames
        if len(parts) == 1:
            return parts[0]
        return interleave(parts[0], parts[1])


def interleave(left: bytes, right: bytes) -> bytes:
    """Two s16le mono buffers of equal length -> one stereo buffer, left first."""
    out = bytearray(2 * len(left))
    out[0::4] = left[0::2]
    out[1::4] = left[1::2]
    out[2::4] = right[0::2]
    out[3::4] = right[1::2]
    return bytes(out)
