"""The authorization endpoint: request checks, the sign-in and organisation pages, codes."""
