-- Devices: the IP-KVMs and BMCs of an organisation. Credentials get their own
-- columns later; base_url must not carry any (no user:password@ part).

CREATE TABLE devices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('nanokvm', 'pikvm', 'ami', 'vnc')),
    base_url    text NOT NULL CHECK (base_url ~ '^[a-z][a-z0-9+.-]*://[^/@[:space:]]+(/[^[:space:]]*)?$'),
    tags        text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
