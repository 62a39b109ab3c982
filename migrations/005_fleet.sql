-- The fleet: every running instance (one process: a worker of `serve --workers N`, on any machine)
-- registers here and beats every second. Another instance may declare it gone only when its beat
-- is older than the grace (counted from the database's start when that is later) AND its owner
-- lock is free; the UPDATE that sets ended_at is the one place that decides, so exactly one
-- survivor wins and closes what it left. A clean stop sets ended_at itself.
CREATE TABLE instances (
    id           char(32) PRIMARY KEY,
    owner_key    integer NOT NULL,              -- its recording owner lock (recordings.owner)
    host         text NOT NULL,
    pid          integer NOT NULL,
    worker       integer,                       -- index under `serve --workers N`; NULL: single process
    internal_url text NOT NULL,                 -- where other instances reach it (forwarded control)
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    end_reason   text CHECK (end_reason IN ('stopped', 'gone')),
    ended_by     char(32),                      -- the survivor that declared it gone
    CONSTRAINT instances_id_hex CHECK (id ~ '^[0-9a-f]{32}$')
);
CREATE INDEX instances_live ON instances (heartbeat_at) WHERE ended_at IS NULL;
CREATE INDEX instances_ended ON instances (ended_at) WHERE ended_at IS NOT NULL;
