-- +goose Up

-- tk_sketch turns the sketch of a rollup row's users that ingest sends
-- (server/postgres/sketch.go: the hll extension's explicit form, with
-- every distinct hash in signed order) into the form hll_add_agg would
-- have made of the same users. Up to the explicit threshold of the default
-- parameters (160 hashes, 1,283 bytes) it is that already; beyond it,
-- hll_union adds the hashes after the first 160 to the first 160 one by
-- one, and so turns the sketch into the sparse or full form.
CREATE FUNCTION tk_sketch(s bytea) RETURNS hll
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN octet_length(s) <= 3 + 8 * 160 THEN s::hll
        ELSE hll_union(substring(s FROM 1 FOR 3 + 8 * 160)::hll,
                       (substring(s FROM 1 FOR 3) || substring(s FROM 4 + 8 * 160))::hll)
    END;

-- +goose Down
DROP FUNCTION tk_sketch(bytea);
