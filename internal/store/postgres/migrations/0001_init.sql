-- 0001: the whole schema as of the SQLite store's migration 0004. Times are
-- unix milliseconds, UTC, as in SQLite, so that both stores give back the
-- same times. JSON is kept as text, byte for byte what was written (jsonb
-- would refuse the \u0000 a message may hold). The columns that hold what
-- users, agents and errors wrote are bytea: PostgreSQL's text can hold
-- neither a NUL nor invalid UTF-8, both of which a Go string may carry and
-- SQLite keeps.

-- The current session of each conversation; rotating replaces the row.
CREATE TABLE sessions (
	key        text PRIMARY KEY,
	session_id text NOT NULL,
	updated_at bigint NOT NULL
);
-- ChatOfSession looks a conversation up by its session.
CREATE INDEX sessions_by_session ON sessions (session_id);

-- Transcript lines, numbered per session from 1.
CREATE TABLE transcript (
	session_id text NOT NULL,
	seq        bigint NOT NULL CHECK (seq > 0),
	role       text NOT NULL,
	content    bytea NOT NULL,
	message_id text NOT NULL DEFAULT '',
	at         bigint NOT NULL,
	PRIMARY KEY (session_id, seq)
);

-- Platform events already received, so a redelivery is dropped.
CREATE TABLE seen (
	platform text NOT NULL,
	event_id text NOT NULL,
	at       bigint NOT NULL,
	PRIMARY KEY (platform, event_id)
);
CREATE INDEX seen_at ON seen (at);

-- The turn journal. An identity column never hands out an id twice, even
-- after pruning. inbound is chat.Inbound, final store.Final and progress
-- store.Progress, as JSON.
CREATE TABLE turns (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_key text NOT NULL,
	inbound     text NOT NULL,
	status      text NOT NULL CHECK (status IN ('received', 'running', 'delivered', 'failed')),
	shown       boolean NOT NULL DEFAULT false,
	error       bytea NOT NULL DEFAULT '',
	final       text,
	progress    text,
	created_at  bigint NOT NULL,
	updated_at  bigint NOT NULL
);
CREATE INDEX turns_pending ON turns (id) WHERE status IN ('received', 'running');
CREATE INDEX turns_finished ON turns (updated_at) WHERE status IN ('delivered', 'failed');

-- Pairing codes; approved ones are how unknown users got in.
CREATE TABLE pairings (
	code        text PRIMARY KEY,
	platform    text NOT NULL,
	user_id     text NOT NULL,
	user_name   bytea NOT NULL DEFAULT '',
	created_at  bigint NOT NULL,
	approved    boolean NOT NULL DEFAULT false,
	approved_at bigint
);
CREATE INDEX pairings_user ON pairings (platform, user_id, approved);

-- Named platform positions: update offsets, sync tokens.
CREATE TABLE state (
	name       text PRIMARY KEY,
	value      text NOT NULL,
	updated_at bigint NOT NULL
);

-- The conversations messages came from (store.Chat), one row each, the
-- latest message's source without its id (chat.Source as JSON): where
-- deliveries may go.
CREATE TABLE chats (
	session_key text PRIMARY KEY,
	platform    text NOT NULL,
	chat_id     text NOT NULL,
	thread_id   text NOT NULL DEFAULT '',
	source      text NOT NULL,
	seen_at     bigint NOT NULL
);
CREATE INDEX chats_by_chat ON chats (platform, chat_id, thread_id, seen_at);

-- The outbox: the agent's own messages (store.Delivery), one key each.
CREATE TABLE deliveries (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key        text NOT NULL UNIQUE,
	target     text NOT NULL,
	text       bytea NOT NULL,
	created_at bigint NOT NULL
);
CREATE INDEX deliveries_created ON deliveries (created_at);

-- A delivery's message to each chat its target names (store.Send); target
-- is chat.Target and message_ids a list of strings, as JSON.
CREATE TABLE delivery_sends (
	delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	send        integer NOT NULL CHECK (send >= 0),
	platform    text NOT NULL,
	target      text NOT NULL,
	status      text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'uncertain')),
	error       bytea NOT NULL DEFAULT '',
	message_ids text NOT NULL DEFAULT '[]',
	updated_at  bigint NOT NULL,
	PRIMARY KEY (delivery_id, send)
);
CREATE INDEX delivery_sends_unsent ON delivery_sends (delivery_id) WHERE status IN ('queued', 'sending');
