-- Tells the capture worker when a device changes or goes: it LISTENs on
-- kvmgate_devices and re-reads the device of an open session, so a new
-- password, URL or kind is used at once and a disabled or removed device's
-- session is closed, whoever made the change (REST, CLI or SQL).
CREATE FUNCTION devices_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kvmgate_devices', OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER devices_changed AFTER UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_notify();
