-- mod_audio_stream sessions of the whole fleet: which instance holds each one, so control
-- (GET/POST /v1/streams/{id}) and a module's reconnect that lands on another instance reach it.
-- A row is written when a session starts, changes state (active, detached) or moves to another
-- instance, refreshed every few seconds, and deleted when the session ends; never per frame.
-- Rows of an instance declared gone are deleted by the survivor that declared it.
CREATE TABLE audio_stream_sessions (
    id            text PRIMARY KEY,                  -- the session id /v1/streams/{id} accepts
    instance_id   char(32) NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    rejoin_key    text NOT NULL,                     -- what a reconnect repeats (registry.rejoin)
    metadata      text,                              -- binary dialect: the metadata frame it matches too
    dialect       text NOT NULL,
    state         text NOT NULL CHECK (state IN ('opening', 'active', 'detached')),
    stream_id     text,
    call_id       text,
    recording_id  char(32),
    path          text NOT NULL,
    peer          text NOT NULL,
    rate          integer,                           -- sample rate, once the format is known
    recorded_frames bigint NOT NULL DEFAULT 0,       -- media-clock position: sample frames recorded
    clock         jsonb,                             -- the capture's clock state at the last write
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audio_stream_sessions_id_hex CHECK (id ~ '^[0-9a-f]{32}$')
);
CREATE INDEX audio_stream_sessions_key ON audio_stream_sessions (rejoin_key);
CREATE INDEX audio_stream_sessions_instance ON audio_stream_sessions (instance_id);
