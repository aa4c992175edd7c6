"""Portal: the web portal for citizens, enterprise agents, officers, department admins
and evaluators.
"""
