"""``usvpipe explore OUT``: the run's explorer served from this computer, every syllable audible."""
from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("explore")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free one).")
@click.option("--recordings", default=None, type=click.Path(file_okay=False),
              help="Folder the recordings are relative to (default: the run's [run].input).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in the default browser.")
def explore(out: Path, port: int, recordings, open_browser: bool):
    """Serve OUT's explorer on 127.0.0.1: click any syllable to hear it; review marks go to OUT/review.csv.

    Only this computer can connect. The offline OUT/umap/explorer.html keeps working without
    this command (with a sample of clips and a review you export by hand). Ctrl-C stops it.
    """
    from ..pipeline.explore import ExploreParams, find_target, make_site
    from ..viz._explore_server import make_server

    target = find_target(out, ExploreParams(port=port, recordings=recordings))
    server = make_server(make_site(target), port)
    host, bound = server.server_address[:2]
    url = f"http://{host}:{bound}/"
    click.echo(f"usvpipe explore: {target.explorer} at {url}  (Ctrl-C to stop)")
    click.echo(f"  review marks are saved to {target.review}")
    if target.audio_root is None:
        click.echo(f"  no sound: {target.why_no_sound}", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("usvpipe explore: stopped", err=True)
    finally:
        server.server_close()
    sys.exit(0)
