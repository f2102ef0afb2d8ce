-- +goose Up

-- A project's own storage window, in days, when shorter than the server's
-- (--retention): the maintenance deletes its events and per-day rows of
-- the days before it. NULL is the server's window.
ALTER TABLE projects ADD COLUMN retention_days integer CHECK (retention_days > 0);

-- +goose Down
ALTER TABLE projects DROP COLUMN retention_days;
