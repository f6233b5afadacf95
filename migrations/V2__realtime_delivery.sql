-- Live delivery over API Gateway WebSockets: tickets to connect, connections with their
-- delivery cursors, and the connector's own durable state.

-- Short-lived, single-use tickets for $connect. Only a hash is stored: a leaked table
-- cannot be replayed into connections.
CREATE TABLE ws_tickets (
    ticket_hash  bytea PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    role         text NOT NULL CHECK (role IN ('admin', 'customer')),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires_at);

-- One row per open WebSocket connection.
--   pending      connected, not subscribed yet: receives nothing
--   subscribing  asked to subscribe (after = requested_after); the connector picks it up
--   live         the connector has set its cursor; it receives every event after it
CREATE TABLE ws_connections (
    connection_id    text PRIMARY KEY CHECK (length(connection_id) BETWEEN 1 AND 128),
    account_id       uuid NOT NULL REFERENCES accounts (id),
    user_id          uuid NOT NULL REFERENCES users (id),
    role             text NOT NULL CHECK (role IN ('admin', 'customer')),
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'subscribing', 'live')),
    requested_after  bigint CHECK (requested_after >= 0),
    -- The last event id this connection has been sent (or had nothing to see up to).
    cursor           bigint CHECK (cursor >= 0),
    -- Bumped by every subscribe, so the connector can tell a re-subscribe from the old one.
    generation       int NOT NULL DEFAULT 0,
    connected_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_connections_state_idx ON ws_connections (state);

-- The leader connector's durable state: who leads, and how far the fan-out has read.
CREATE TABLE connector_state (
    id            int PRIMARY KEY CHECK (id = 1),
    cursor        bigint NOT NULL DEFAULT 0,
    leader        text,
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO connector_state (id) VALUES (1);
