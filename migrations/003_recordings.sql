-- Recordings: audio stored while it arrives (SHOUT sources, mod_audio_stream, /store/ PUTs).

-- A recording owns one blob that grows by one blob_chunks row per flush (at least every second
-- while audio flows). "owner" is the advisory-lock key of the instance writing it: a recording
-- left in state 'recording' whose owner no longer holds its lock was cut off by a crash, and is
-- found and closed as 'interrupted' (audio kept) by any instance. When a recording ends with audio,
-- a media row with the same id and blob makes it playable through the ordinary playback URLs.
CREATE TABLE recordings (
    id           char(32) PRIMARY KEY,
    account_id   char(32),
    name         text NOT NULL,
    format       text NOT NULL CHECK (format IN ('mp3', 'wav')),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'recording', 'complete', 'interrupted')),
    origin       text,                      -- shout, store, audio_stream
    end_reason   text,                      -- eof, limit_duration, limit_size, silence, reset, shutdown, crash ...
    blob_id      bigint REFERENCES blobs (id) ON DELETE SET NULL,
    size         bigint NOT NULL DEFAULT 0,
    duration_ms  bigint,
    sample_rate  integer,
    channels     smallint,
    sha256       text,
    owner        integer,
    heartbeat_at timestamptz,
    peer         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    ended_at     timestamptz,
    CONSTRAINT recordings_id_hex CHECK (id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT recordings_account_hex CHECK (account_id IS NULL OR account_id ~ '^[0-9a-f]{32}$')
);
CREATE INDEX recordings_live ON recordings (owner, heartbeat_at) WHERE state = 'recording';
CREATE INDEX recordings_created ON recordings (created_at, id);
CREATE INDEX recordings_account ON recordings (account_id, created_at);
