"""A small Sphinx extension for the book's offline HTML (listed in ``_config.yml``).

- sphinx-thebe registers its configuration script twice under Jupyter Book 1.x,
  which makes every page throw "Identifier 'THEBE_JS_URL' has already been
  declared"; each page keeps one copy of every inline script.
- pydata-sphinx-theme logs "invalid theme mode" on a first visit when no mode
  is set; the book sets ``html_context['default_mode'] = 'light'`` unless the config chose one.
"""
from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (str(js.filename or ""), str(js.attributes.get("body", "")))   # None and "" both mean inline
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def _default_mode(app, config):
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")
    config.html_context = context


def setup(app):
    app.connect("config-inited", _default_mode)
    # Early: html-page-context is emitted with emit_firstresult, so a theme handler that
    # returns a template name would stop a later handler from running.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
