"""The watchdog: checks of the published data and crash-rate rules, notifications, reports.

- ``settings.py``: the ``[watchdog]``, ``[[alerts]]`` and ``[notify]`` tables of the config;
- ``checks.py``: missing dates, volume and quality, from the partitions' reports;
- ``rules.py``: the crash-rate rules, from the aggregates (SQL with bound parameters);
- ``dispatch.py``: what is new, worse, still firing or resolved, kept in the state file;
- ``notify.py``: email (SMTP) and webhooks (JSON, Slack), with retries;
- ``report.py``: the digest of ``crash-aggregates report --email``, charts rendered on the server;
- ``command.py``: what ``crash-aggregates check`` does, and :func:`current_findings` for the dashboard.

This package's ``__init__`` imports nothing: ``config.py`` reads ``settings.py``
on every command.
"""
