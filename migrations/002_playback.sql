-- Playback: transcoded variants cached per revision, and revoked stream URLs.

-- A variant is one revision of one item in another format or rate, transcoded once and kept, so
-- the second request is served from here. A new revision orphans the old variants' blobs.
CREATE TABLE media_variants (
    media_id   char(32) NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    revision   integer NOT NULL,
    format     text NOT NULL CHECK (format IN ('wav', 'mp3')),
    rate       integer NOT NULL,
    blob_id    bigint NOT NULL REFERENCES blobs (id),
    size       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (media_id, revision, format, rate)
);

-- Stream URLs revoked before they expire, by the token's nonce; rows go once the token would
-- have expired anyway.
CREATE TABLE revoked_tokens (
    nonce      bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- prompt:// resolution looks a prompt up by id and languages across its owner and the system.
CREATE INDEX media_prompt_lookup ON media (prompt_id, language) WHERE prompt_id IS NOT NULL;
