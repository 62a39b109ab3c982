-- Media records, their content in chunks, and the service's own shared settings.

-- Content is kept apart from the record that names it: a new revision writes a new blob and
-- swaps the pointer in one transaction; the old blob is orphaned, then swept after a grace
-- period so that downloads already in flight finish on the bytes they started with.
CREATE TABLE blobs (
    id          bigserial PRIMARY KEY,
    size        bigint NOT NULL DEFAULT 0,
    sha256      text,
    complete    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    orphaned_at timestamptz
);
CREATE INDEX blobs_orphaned_at ON blobs (orphaned_at) WHERE orphaned_at IS NOT NULL;

-- One row per chunk; "pos" is the byte offset of the chunk's first byte, so a reader can seek
-- to any offset with one indexed query whatever the chunk sizes were.
CREATE TABLE blob_chunks (
    blob_id bigint NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    pos     bigint NOT NULL,
    data    bytea  NOT NULL,
    PRIMARY KEY (blob_id, pos)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;  -- audio does not compress

CREATE TABLE media (
    id           char(32) PRIMARY KEY,
    account_id   char(32),                  -- NULL: system media
    prompt_id    text,
    language     text,
    name         text NOT NULL,
    content_type text NOT NULL,
    codec        text NOT NULL,             -- pcm_s16le, pcm_mulaw, pcm_alaw, mp3 ...
    size         bigint NOT NULL,
    duration_ms  bigint NOT NULL,
    sample_rate  integer NOT NULL,
    channels     smallint NOT NULL,
    sha256       text NOT NULL,
    revision     integer NOT NULL DEFAULT 1,
    blob_id      bigint NOT NULL REFERENCES blobs (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT media_id_hex CHECK (id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT media_account_hex CHECK (account_id IS NULL OR account_id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT media_language_lower CHECK (language IS NULL OR language = lower(language)),
    CONSTRAINT media_prompt_has_language CHECK (prompt_id IS NULL OR language IS NOT NULL)
);
-- One prompt per (owner, prompt id, language): this is also the index a prompt:// lookup uses.
CREATE UNIQUE INDEX media_prompt_key ON media (coalesce(account_id, ''), prompt_id, language)
    WHERE prompt_id IS NOT NULL;
CREATE INDEX media_account_name ON media (account_id, name);
CREATE INDEX media_created ON media (created_at, id);

-- Small shared values every instance must agree on (e.g. the URL signing secret).
CREATE TABLE service_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
