-- The final text a turn is delivering and the messages it edits into it
-- (store.Final as JSON), so that a restart makes those edits again.
ALTER TABLE turns ADD COLUMN final TEXT;
