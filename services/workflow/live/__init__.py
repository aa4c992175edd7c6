"""Live progress (实时进度): server-sent event streams of applications' history."""
