"""Materials: fetched from exchange with the application as legal basis, or uploaded."""
