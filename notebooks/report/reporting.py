"""The look of the example's reports, shared by daily_report and summary: money and dates written one way, tables
right-aligned with thousands separators (pandas Styler), a page readable full width, and the footer.

Both notebooks list this file among their `inputs`, so a change here reruns them (nbflow fingerprints inputs, not
the modules a notebook imports).
"""

import html
from datetime import date, datetime

import pandas as pd
from IPython.display import HTML

# `body.jp-Notebook` is the page nbconvert writes (its lab template), not JupyterLab: a notebook run in JupyterLab
# keeps JupyterLab's own layout.
STYLE = HTML("""<style>
  body.jp-Notebook { max-width: 80rem; margin: 0 auto; padding: 1.5rem 2.5rem; }
  body.jp-Notebook .jp-Cell { padding: 0; }
  body.jp-Notebook .jp-RenderedHTMLCommon { padding-left: 0; }
  body.jp-Notebook .jp-RenderedHTMLCommon table { font-size: 0.95rem; margin: 0.4rem 0 1rem; }
  body.jp-Notebook .jp-RenderedHTMLCommon h2 { margin-top: 1.6rem; }
  .report-subtitle { color: #57606a; font-size: 1.05rem; margin-top: -0.4rem; }
  .report-headline { display: flex; flex-wrap: wrap; gap: 1rem; margin: 0.5rem 0 1rem; }
  .report-figure { flex: 1 1 11rem; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.8rem 1rem; }
  .report-figure .label { color: #57606a; font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em; }
  .report-figure .value { font-size: 1.7rem; font-weight: 600; margin: 0.2rem 0; font-variant-numeric: tabular-nums; }
  .report-figure .change { font-size: 0.9rem; color: #57606a; }
  .report-figure .up { color: #1a7f37; }
  .report-figure .down { color: #cf222e; }
  .report-footer { color: #57606a; font-size: 0.85rem; border-top: 1px solid #d0d7de; margin-top: 2rem;
                   padding-top: 0.6rem; }
</style>""")

_CELLS = [
    {"selector": "th", "props": "background: #f6f8fa; text-align: right; padding: 0.4em 0.9em"},
    {"selector": "td", "props": "text-align: right; padding: 0.4em 0.9em; font-variant-numeric: tabular-nums"},
    {"selector": "th:first-child, td:first-child", "props": "text-align: left; font-weight: 600"},
]


def money(value: float) -> str:
    """An amount in the reports' currency, to the cent: $12,345.67, -$8.00."""
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def long_date(day: date) -> str:
    """Tuesday 24 November 2026."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def table(frame: pd.DataFrame, formats: dict) -> "pd.io.formats.style.Styler":
    """The frame as a table: its index as the first column (left-aligned), the other cells right-aligned and
    formatted by `formats` (column -> format string or function); an empty cell reads "no data"."""
    return frame.reset_index().style.hide(axis="index").format(formats, na_rep="no data").set_table_styles(_CELLS)


def footer(notebook: str, parameters: dict, note: str = "") -> HTML:
    """When and from what the report was made, with the parameter values it was made with."""
    generated = datetime.now().astimezone()
    values = ", ".join(f"<code>{name} = {html.escape(repr(value))}</code>" for name, value in parameters.items())
    return HTML(
        f'<div class="report-footer">Generated {generated:%Y-%m-%d %H:%M %Z} by nbflow from '
        f"<code>{html.escape(notebook)}</code>. Parameters: {values}.{' ' + html.escape(note) if note else ''}</div>"
    )
