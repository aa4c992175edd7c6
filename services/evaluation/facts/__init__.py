"""What evaluation knows from the other parts' events: its read copies and per-application facts."""
