-- Dashboard sign-in: sessions held by a browser cookie, and failed sign-ins
-- for throttling (fcgi/signin.c, fcgi/websession.c).
--
-- The cookie carries 32 random bytes; only their SHA-256 is stored. A
-- session belongs to one membership and ends with it (removing the member
-- deletes its sessions); it is refused once expires_at has passed, after
-- KVMGATE_WEB_SESSION_IDLE_S without a request, or while the user is
-- disabled. Signing out deletes the row.

CREATE TABLE web_sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash          bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    org_id        bigint NOT NULL,
    user_id       bigint NOT NULL,
    source_ip     text CHECK (length(source_ip) <= 64),
    user_agent    text CHECK (length(user_agent) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    FOREIGN KEY (org_id, user_id) REFERENCES memberships(org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

-- One row per refused sign-in (wrong password, unknown or disabled user),
-- counted per username as typed and per source address within
-- KVMGATE_SIGNIN_WINDOW_S. Rows older than a day are removed as new ones
-- come in. Never a password.
CREATE TABLE signin_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username   text NOT NULL CHECK (length(username) <= 64),
    source_ip  text NOT NULL CHECK (length(source_ip) <= 64),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signin_failures_username ON signin_failures(username, at);
CREATE INDEX signin_failures_ip ON signin_failures(source_ip, at);
