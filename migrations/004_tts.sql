-- Text to speech: which stored media item holds the speech for (engine, voice, language, text).

-- "key" is the sha256 of the four (media_mgr/tts/speech.py), so every instance finds what any
-- instance synthesised. The row is written before its media item and points at it without a foreign
-- key: a crash between the two leaves a row whose media is missing (treated as a miss and replaced),
-- never a media item nothing points at. An entry lives until expires_at, pushed forward by every use;
-- the sweep deletes the media item of an expired entry, then the entry.
CREATE TABLE tts_cache (
    key        text PRIMARY KEY,
    engine     text NOT NULL,
    voice      text NOT NULL,
    language   text NOT NULL,
    text       text NOT NULL,
    media_id   char(32) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT tts_cache_key_hex CHECK (key ~ '^[0-9a-f]{64}$')
);
CREATE INDEX tts_cache_expires ON tts_cache (expires_at);
