-- Leases (store.Leaser): which replica holds a name (the gateway's
-- platform connections), until when by the database's clock, in unix
-- milliseconds, and the fencing token, one more for every new holder.
CREATE TABLE leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	token      bigint NOT NULL,
	expires_at bigint NOT NULL
);
