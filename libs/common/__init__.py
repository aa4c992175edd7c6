"""What every part of Pingtai needs the same way: settings, database, errors, telemetry, health."""
