"""The dashboard: crash rates in a browser, by any dimension, with exact intervals.

One family of modules: ``app`` (routes, security, error pages), ``views``
(the pages and the JSON API, one module per page family), ``params`` (request parameters), ``analysis``
(what the views conclude from the sums), ``dataset`` (the served dataset, its
version and the answer cache), ``serve`` (what ``crash-aggregates serve``
runs), with ``templates/`` and ``static/`` (Chart.js vendored: no CDN).
Needs the ``web`` extra: ``pip install 'crash-aggregates[web]'``.
"""
