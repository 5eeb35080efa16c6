-- Device credentials, sealed with AES-256-GCM under the master key, which is
-- never stored here (KVMGATE_MASTER_KEY_FILE or KVMGATE_MASTER_KEY): a
-- 12-byte nonce, the ciphertext of {"username":...,"password":...} followed
-- by the 16-byte tag, and the id of the key that sealed it. Screen size hints
-- for drivers and tools before a first frame tells the real size.

ALTER TABLE devices
    ADD COLUMN cred_nonce       bytea CHECK (length(cred_nonce) = 12),
    ADD COLUMN cred_ciphertext  bytea CHECK (length(cred_ciphertext) >= 16),
    ADD COLUMN cred_key_id      text CHECK (cred_key_id ~ '^[0-9a-f]{8}$'),
    ADD COLUMN screen_width     integer CHECK (screen_width BETWEEN 1 AND 16384),
    ADD COLUMN screen_height    integer CHECK (screen_height BETWEEN 1 AND 16384),
    ADD CONSTRAINT devices_credentials_whole CHECK (
        (cred_nonce IS NULL) = (cred_ciphertext IS NULL) AND
        (cred_nonce IS NULL) = (cred_key_id IS NULL));
