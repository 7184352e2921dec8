-- The chatts table of the Chatter apps (API.md). Safe to run any number of times, on an empty
-- database or on an existing Chatter database from before the images tutorial.
SET client_min_messages = warning;

CREATE TABLE IF NOT EXISTS chatts (
    username varchar(255),
    message  varchar(255),
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    time     timestamp DEFAULT CURRENT_TIMESTAMP,
    imageurl text,
    videourl text
);

-- An existing Chatter database gets the media columns.
ALTER TABLE chatts ADD COLUMN IF NOT EXISTS imageurl text, ADD COLUMN IF NOT EXISTS videourl text;

-- getchatts/getimages read oldest first.
CREATE INDEX IF NOT EXISTS chatts_time_idx ON chatts (time);

-- Pages of new rows (GET /getimages?after=...&limit=N, docs/API.md): the transaction that
-- inserted each row, compared with the snapshots a client's cursor holds. A time or serial
-- cursor would skip rows whose transactions commit out of order; a snapshot tells exactly which
-- rows a page saw. Rows from before this column get the migration's transaction, which every
-- later snapshot sees.
ALTER TABLE chatts ADD COLUMN IF NOT EXISTS xact xid8 NOT NULL DEFAULT pg_current_xact_id();
-- A page reads the rows of transactions from its cursor's oldest snapshot on, in (xact, id) order.
CREATE INDEX IF NOT EXISTS chatts_xact_idx ON chatts (xact, id);

-- chatterd caches each listing once per node (chatterd_list_cache); every statement that
-- changes chatts, whoever runs it, tells the nodes' LISTEN connections. A transaction that ran
-- it cannot be PREPAREd (two-phase commit): PostgreSQL refuses PREPARE after NOTIFY.
CREATE OR REPLACE FUNCTION chatts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chatts', '');
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS chatts_changed ON chatts;
CREATE TRIGGER chatts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON chatts
    FOR EACH STATEMENT EXECUTE FUNCTION chatts_changed();
