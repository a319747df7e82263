-- 0001: the initial schema. Times are unix milliseconds, UTC.

-- The current session of each conversation; rotating replaces the row.
CREATE TABLE sessions (
	key        TEXT PRIMARY KEY,
	session_id TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- Transcript lines, numbered per session from 1.
CREATE TABLE transcript (
	session_id TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	role       TEXT NOT NULL,
	content    TEXT NOT NULL,
	message_id TEXT NOT NULL DEFAULT '',
	at         INTEGER NOT NULL,
	PRIMARY KEY (session_id, seq)
) STRICT;

-- Platform events already received, so a redelivery is dropped.
CREATE TABLE seen (
	platform TEXT NOT NULL,
	event_id TEXT NOT NULL,
	at       INTEGER NOT NULL,
	PRIMARY KEY (platform, event_id)
) STRICT;
CREATE INDEX seen_at ON seen (at);

-- The turn journal. AUTOINCREMENT keeps ids unique even after pruning.
CREATE TABLE turns (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	session_key TEXT NOT NULL,
	inbound     TEXT NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('received', 'running', 'delivered', 'failed')),
	shown       INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX turns_pending ON turns (id) WHERE status IN ('received', 'running');
CREATE INDEX turns_finished ON turns (updated_at) WHERE status IN ('delivered', 'failed');

-- Pairing codes; approved ones are how unknown users got in.
CREATE TABLE pairings (
	code        TEXT PRIMARY KEY,
	platform    TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	user_name   TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	approved    INTEGER NOT NULL DEFAULT 0,
	approved_at INTEGER
) STRICT;
CREATE INDEX pairings_user ON pairings (platform, user_id, approved);

-- Named platform positions: update offsets, sync tokens.
CREATE TABLE state (
	name       TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
