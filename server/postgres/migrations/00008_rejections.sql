-- +goose Up

-- daily_rejections counts, per project, UTC day of receipt and reason, the
-- events the server rejected in requests it otherwise served (an invalid
-- field, a timestamp too old, …), for the query API's data quality. The
-- reasons are the decoder's own, a few dozen at most, so that a day has a
-- bounded number of rows whatever clients send.
CREATE TABLE daily_rejections (
    project_id integer NOT NULL,
    day        date    NOT NULL,
    reason     text    NOT NULL,
    events     bigint  NOT NULL,
    PRIMARY KEY (project_id, day, reason)
);

-- +goose Down
DROP TABLE daily_rejections;
