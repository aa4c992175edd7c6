"""People: citizens, enterprise agents, officers and admins, with their credentials."""
