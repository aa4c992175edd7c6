"""What every part of Pingtai needs the same way: settings, database, errors, telemetry, health."""

from libs.common._unused_imports import hide_unused_optional_imports

hide_unused_optional_imports()
