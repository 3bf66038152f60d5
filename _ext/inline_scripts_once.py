"""Write each inline <script> of the HTML pages once.

Sphinx 7.4 (the series Jupyter Book 1 requires) passes a body-only script to the HTML builder as
filename None when an extension adds it, and again as filename '' when it starts writing; the two
don't compare equal, so the page gets the script twice. sphinx-thebe's
`const THEBE_JS_URL = ...` then throws "Identifier 'THEBE_JS_URL' has already been declared" in
the browser on every page. This is the fix Sphinx 8.2 made (sphinx-doc/sphinx#13402): hand the
builder '' in both places, so that its own duplicate check catches the second copy.
"""


def _give_builder_empty_filenames(app):
    add_js_file = getattr(app.builder, "add_js_file", None)
    if add_js_file is None:  # not an HTML builder
        return

    def add_js_file_once(filename, **kwargs):
        add_js_file(filename or "", **kwargs)

    app.builder.add_js_file = add_js_file_once


def setup(app):
    # priority 0: before any other extension adds a script when the builder starts
    app.connect("builder-inited", _give_builder_empty_filenames, priority=0)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
