"""The pages and the JSON API, one module per page family: read the parameters, ask the dataset, render.

Every control is a URL parameter, so any view can be bookmarked and shared.
Answers are cached per dataset version (``dataset.ServedData``); what a view
concludes from them (``analysis``) is cached with them. ``common`` holds what
every view shares.
"""

from .builds import builds
from .compare import compare
from .console import api_schema, api_sql, api_sql_download, console_page
from .dashboards import dashboard_list, dashboard_page
from .explore import api_rates, explore
from .health import api_health, health
from .overview import home, overview
from .saved import query_list, query_page, query_version, query_versions

__all__ = [
    "api_health", "api_rates", "api_schema", "api_sql", "api_sql_download", "builds", "compare", "console_page",
    "dashboard_list", "dashboard_page", "explore", "health", "home", "overview", "query_list", "query_page",
    "query_version", "query_versions",
]  # fmt: skip
