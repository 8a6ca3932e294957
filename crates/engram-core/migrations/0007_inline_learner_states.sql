-- 0007: small learner states kept inside the database. A state up to
-- INLINE_STATE_BYTES is stored here, in the same transaction as the row
-- that makes it live, so a save costs one fsync (the WAL's) instead of
-- three (the object file, its directory, the WAL). Larger ones stay files
-- under objects/. Rows refer to either by the same blake3 checksum; an
-- inline state no row refers to is deleted in the transaction that lets
-- go of it (or by the collection after retention).
CREATE TABLE learner_inline_states (
    checksum BLOB PRIMARY KEY NOT NULL,   -- blake3 of bytes
    bytes    BLOB NOT NULL
);
