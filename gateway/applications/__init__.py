"""Developer applications (开发者应用) of enterprises and departments, and their API keys."""
