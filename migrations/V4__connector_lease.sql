-- Leadership as a lease with an epoch (docs/architecture.md, "Leader and standby").
-- The advisory lock says who may lead; the lease says until when, on the database's clock.
-- A leader renews it every poll and stops sending before it ends; a standby that finds it
-- ended ends the holder's sessions and takes over under a new epoch. Every write a leader
-- makes to the connection registry names its epoch, so a deposed leader's late writes are
-- refused in SQL.
ALTER TABLE connector_state
    ADD COLUMN epoch        bigint NOT NULL DEFAULT 0,
    -- The holder's control session, and the application_name all its sessions carry.
    ADD COLUMN holder_pid   int,
    ADD COLUMN holder_app   text,
    ADD COLUMN lease_until  timestamptz;
