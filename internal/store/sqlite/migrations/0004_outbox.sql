-- The conversations messages came from (store.Chat), one row each, the
-- latest message's source without its id: where deliveries may go.
CREATE TABLE chats (
	session_key TEXT PRIMARY KEY,
	platform    TEXT NOT NULL,
	chat_id     TEXT NOT NULL,
	thread_id   TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL,
	seen_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX chats_by_chat ON chats (platform, chat_id, thread_id, seen_at);

-- The chats of the turns journalled before this table existed.
INSERT INTO chats (session_key, platform, chat_id, thread_id, source, seen_at)
	SELECT session_key, json_extract(inbound, '$.source.platform'), json_extract(inbound, '$.source.chat_id'),
		COALESCE(json_extract(inbound, '$.source.thread_id'), ''), json_remove(json_extract(inbound, '$.source'), '$.message_id'), created_at
	FROM turns WHERE true
	ON CONFLICT (session_key) DO UPDATE SET
		platform = excluded.platform, chat_id = excluded.chat_id, thread_id = excluded.thread_id,
		source = excluded.source, seen_at = excluded.seen_at
	WHERE excluded.seen_at >= chats.seen_at;

-- The outbox: the agent's own messages (store.Delivery), one key each.
CREATE TABLE deliveries (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	key        TEXT NOT NULL UNIQUE,
	target     TEXT NOT NULL,
	text       TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- A delivery's message to each chat its target names (store.Send).
CREATE TABLE delivery_sends (
	delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	send        INTEGER NOT NULL,
	platform    TEXT NOT NULL,
	target      TEXT NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'uncertain')),
	error       TEXT NOT NULL DEFAULT '',
	message_ids TEXT NOT NULL DEFAULT '[]',
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (delivery_id, send)
) STRICT;
CREATE INDEX delivery_sends_unsent ON delivery_sends (delivery_id) WHERE status IN ('queued', 'sending');
