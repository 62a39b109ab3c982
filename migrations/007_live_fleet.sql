-- Live mounts and relays of the fleet: which instance holds a SHOUT source's mount (so a listener
-- that reaches another instance is fed from it through the owner's internal port), and which
-- instance runs each relay to an external Icecast (so a survivor takes the relays of an instance
-- declared gone over: one UPDATE ... WHERE owner = gone, won by exactly one survivor).

-- One row per mount with a live source, per instance; deleted when the source ends, when its
-- instance stops, or (for an instance declared gone) by the survivor that declared it.
CREATE TABLE live_mounts (
    name         text NOT NULL,
    instance_id  char(32) NOT NULL,
    content_type text NOT NULL,
    info         jsonb NOT NULL DEFAULT '{}',   -- ice-* headers as the source sent them
    started_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, instance_id)
);
CREATE INDEX live_mounts_instance ON live_mounts (instance_id);

-- A relay lives here until DELETE /v1/relays/{id}; ``owner`` is the instance that runs it now.
-- The target's source password is needed to start it again elsewhere, so it is stored (as the
-- admin API received it); it is never listed.
CREATE TABLE relays (
    id            text PRIMARY KEY,
    owner         char(32) NOT NULL,
    mount         text,                          -- a live mount (on any instance) ...
    media_id      char(32),                      -- ... or a stored item played in a loop
    host          text NOT NULL,
    port          integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    target_mount  text NOT NULL,
    source_user   text NOT NULL,
    password      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT relays_one_source CHECK ((mount IS NULL) <> (media_id IS NULL))
);
CREATE INDEX relays_owner ON relays (owner);
