-- +goose Up
-- Peer links (docs/peers.md): one connection shared with another Duplex
-- deployment. Each side keeps its own row: its own Ed25519 key pair (the
-- private key sealed like system secrets), the peer's public key and
-- address, and the system that stands for the peer in the connection.
CREATE TABLE peer_links (
    id              BIGSERIAL PRIMARY KEY,
    team_id         BIGINT  NOT NULL,
    name            TEXT    NOT NULL,
    connection_id   BIGINT  NOT NULL DEFAULT 0,
    system_id       BIGINT  NOT NULL DEFAULT 0,
    peer_side       TEXT    NOT NULL CHECK (peer_side IN ('a', 'b')),
    local_node      TEXT    NOT NULL UNIQUE,
    remote_node     TEXT    NOT NULL DEFAULT '',
    remote_url      TEXT    NOT NULL DEFAULT '',
    local_url       TEXT    NOT NULL DEFAULT '',
    private_key     BYTEA    NOT NULL,
    public_key      BYTEA    NOT NULL,
    remote_key      BYTEA,
    status          TEXT    NOT NULL DEFAULT 'invited',
    status_reason   TEXT    NOT NULL DEFAULT '',
    last_contact_at TIMESTAMPTZ,
    last_error      TEXT    NOT NULL DEFAULT '',
    -- what the peer last said it has waiting for us (its outbox after that message)
    remote_waiting  INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- An invitation: the hash of its one-time secret, valid until expires_at,
-- spent once (used_at).
CREATE TABLE peer_invites (
    id          BIGSERIAL PRIMARY KEY,
    link_id     BIGINT  NOT NULL REFERENCES peer_links (id) ON DELETE CASCADE,
    secret_hash TEXT    NOT NULL UNIQUE,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);

-- The sender's durable outbox: one row per message, sent in id order per
-- link. event_id (with kind) makes the engine's retry of an event write
-- the same message again rather than a second one.
CREATE TABLE peer_outbox (
    id              BIGSERIAL PRIMARY KEY,
    link_id         BIGINT  NOT NULL REFERENCES peer_links (id) ON DELETE CASCADE,
    msg_id          TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    event_id        BIGINT  NOT NULL DEFAULT 0,
    pair_key        TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX peer_outbox_waiting ON peer_outbox (link_id, sent_at, id);

-- The receiver's inbox: every message id taken, recorded in the
-- transaction of its effect, so a redelivery is answered and not applied.
CREATE TABLE peer_inbox (
    link_id     BIGINT  NOT NULL REFERENCES peer_links (id) ON DELETE CASCADE,
    msg_id      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (link_id, msg_id)
);

-- What the peer created for a pair (its acknowledgement): id, key, URL.
CREATE TABLE peer_pairs (
    link_id    BIGINT  NOT NULL REFERENCES peer_links (id) ON DELETE CASCADE,
    pair_key   TEXT    NOT NULL,
    remote_id  TEXT    NOT NULL DEFAULT '',
    remote_key TEXT    NOT NULL DEFAULT '',
    remote_url TEXT    NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (link_id, pair_key)
);

-- +goose Down
DROP TABLE peer_pairs;
DROP TABLE peer_inbox;
DROP TABLE peer_outbox;
DROP TABLE peer_invites;
DROP TABLE peer_links;
