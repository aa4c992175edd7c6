"""Server-side sessions: who is signed in in which browser, their tokens (sealed), CSRF tokens."""
