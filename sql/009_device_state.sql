-- What the capture worker last saw of each device, written on change (not per
-- frame): whether its session is up, when the last frame arrived (at most a
-- minute stale), the screen size, the power LED and HDMI. NULL = not known.
-- Plus a per-device flag that keeps its session open with no one watching.

CREATE TABLE device_state (
    device_id      bigint PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    online         boolean NOT NULL DEFAULT false,
    session_state  text NOT NULL DEFAULT 'idle',
    last_error     text,
    firmware       text,
    last_frame_at  timestamptz,
    width          integer CHECK (width > 0),
    height         integer CHECK (height > 0),
    power_led      boolean,
    hdmi_enabled   boolean,
    hdmi_signal    boolean,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE devices ADD COLUMN keep_warm boolean NOT NULL DEFAULT false;
