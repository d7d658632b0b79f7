"""The shared kernel: time zones, tokens, Markdown, slugs, safe redirects, query counting."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The id converter (before any rule is added), the public page cache (`core.pagecache`),
    `/healthz`, and the template helpers every page uses."""
    from chamber.core import pagecache, urls, views
    from chamber.core.markdown import render_markdown
    from chamber.core.routing import IdConverter
    from chamber.core.templating import field_attributes, html_datetime
    from chamber.core.times import format_date, format_time, utc_to_local

    app.url_map.converters["int"] = IdConverter
    pagecache.init_app(app)
    app.register_blueprint(views.bp)
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["time"] = format_time
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["html_datetime"] = html_datetime
    app.jinja_env.globals["local"] = utc_to_local  # local(moment, zone name): wall-clock time
    app.jinja_env.globals["field_attributes"] = field_attributes
    # A page's written-out addresses are at the public base URL, never the request's Host: the
    # page may be kept and served to everyone (`pagecache`), so a forged Host must not be in it.
    app.jinja_env.globals["public_url"] = urls.external_url
    app.jinja_env.globals["chamber_name"] = app.config["CHAMBER_NAME"]
    app.jinja_env.globals["brand_colour"] = app.config["BRAND_COLOUR"]
