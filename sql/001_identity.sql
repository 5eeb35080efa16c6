-- Organisations, users with a role per organisation, and API tokens.
-- Tokens are stored only as SHA-256 hashes; the clear token is shown once.

CREATE TABLE organisations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._-]{1,64}$'),
    email         text CHECK (email IS NULL OR length(email) <= 254),
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE org_role AS ENUM ('org_admin', 'operator', 'viewer', 'auditor');

CREATE TABLE memberships (
    org_id   bigint NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role     org_role NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        bigint NOT NULL,
    user_id       bigint NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    shown         text NOT NULL,          -- leading characters, to recognise it in lists
    hash          bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    scopes        text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write']::text[]),
    device_tag    text,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    FOREIGN KEY (org_id, user_id) REFERENCES memberships(org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX api_tokens_org ON api_tokens(org_id);
