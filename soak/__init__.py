"""Integrity soak: the real service under mixed load and scheduled faults, then every invariant.

``make soak`` (``QUICK=1`` for the CI-sized run) starts its own PostgreSQL, Redis, SeaweedFS,
two API processes and two workers on spare ports (``stack``), drives them with concurrent
clients (``load``) while ``faults`` kills and restarts them, runs the maintenance passes to
completion (``maintenance``), checks the database, the bucket and what the clients saw
(``invariants``, ``candidates``) and writes a JSON report (``report``). ``run`` ties them up.
"""
