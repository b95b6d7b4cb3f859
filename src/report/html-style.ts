/**
 * The HTML report's style sheet, inlined (the Content-Security-Policy allows
 * inline styles only). Status colours are shared by the timeline, the pills
 * and the legend; long database text wraps or scrolls inside its cell.
 */
export const REPORT_CSS = `
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --bg: #ffffff;
  --applied: #1a7f37; --applied-bg: #dafbe1;
  --passed: #0969da; --passed-bg: #ddf4ff;
  --blocked: #9a6700; --blocked-bg: #fff8c5;
  --failed: #cf222e; --failed-bg: #ffebe9;
  --skipped: #59636e; --skipped-bg: #eff2f5;
  --reverted: #8250df; --reverted-bg: #fbefff;
}
* { box-sizing: border-box; }
html { background: var(--soft); }
body {
  margin: 0 auto; max-width: 1180px; padding: 24px 24px 48px; color: var(--fg); background: var(--soft);
  font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
}
h1 { font-size: 24px; margin: 0; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 0 0 12px; }
h3 { font-size: 14px; margin: 16px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section, header.report {
  background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 20px 24px; margin: 0 0 16px;
}
.sub { color: var(--muted); margin: 4px 0 0; overflow-wrap: anywhere; }
.badges { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.badge {
  display: inline-flex; align-items: baseline; gap: 8px; padding: 8px 14px; border-radius: 6px;
  font-weight: 600; font-size: 16px; color: #fff; max-width: 100%; overflow-wrap: anywhere;
}
.badge small { font-weight: 400; font-size: 13px; opacity: .92; }
.badge.pass, .badge.go { background: var(--applied); }
.badge.fail { background: var(--failed); }
.badge.no-go { background: var(--blocked); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; max-height: 9em; overflow: auto; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace; }
code { background: var(--soft); border-radius: 4px; padding: 1px 4px; overflow-wrap: anywhere; }
pre {
  background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 6px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16em; overflow: auto;
}
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); overflow-wrap: break-word; }
td code { overflow-wrap: anywhere; }
td.nowrap, .nw { white-space: nowrap; }
.w-name { min-width: 11em; } .w-objects { min-width: 8em; } .w-rows { min-width: 16em; } .w-metrics { min-width: 15em; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--soft); white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td .clip { max-height: 7.5em; overflow: auto; min-width: 8em; overflow-wrap: anywhere; }
td ul { margin: 0; padding: 0; list-style: none; }
details summary { cursor: pointer; white-space: nowrap; }
details ul { margin: 4px 0 0 14px; padding: 0; list-style: disc; color: var(--muted); overflow-wrap: anywhere; max-height: 12em; overflow: auto; }
.pill {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap;
}
.st-applied { color: var(--applied); background: var(--applied-bg); }
.st-passed { color: var(--passed); background: var(--passed-bg); }
.st-blocked { color: var(--blocked); background: var(--blocked-bg); }
.st-failed { color: var(--failed); background: var(--failed-bg); }
.st-skipped { color: var(--skipped); background: var(--skipped-bg); }
.st-reverted { color: var(--reverted); background: var(--reverted-bg); }
.legend { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 14px; }
.stage-row { display: grid; grid-template-columns: 160px 1fr; gap: 12px; padding: 10px 0; border-top: 1px solid var(--line); }
.stage-row:first-of-type { border-top: 0; }
.stage-name { font-weight: 600; overflow-wrap: anywhere; }
.stage-name small { display: block; font-weight: 400; color: var(--muted); max-height: 4.5em; overflow: hidden; }
.cells { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; list-style: none; }
.cell {
  width: 122px; padding: 6px 8px; border-radius: 6px; border: 1px solid currentColor; border-left-width: 4px;
  display: flex; flex-direction: column; gap: 1px; min-width: 0;
}
.cell .id { font-weight: 700; font-size: 13px; }
.cell .nm {
  color: var(--fg); font-size: 12.5px; line-height: 1.3; overflow: hidden; overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
}
.cell .meta { font-size: 11.5px; }
.ok { color: var(--applied); font-weight: 600; }
.bad { color: var(--failed); font-weight: 600; }
.chart .band { fill: transparent; }
.chart .band.alt { fill: var(--soft); }
.chart .band-label, .chart .scale { font-size: 9px; fill: var(--muted); }
.chart .axis { stroke: var(--line); stroke-width: 1; }
.chart .line { fill: none; stroke: var(--passed); stroke-width: 1.75; stroke-linejoin: round; }
.chart circle { fill: var(--passed); }
.chart circle.last { fill: var(--fg); }
.chart .na path { stroke: var(--muted); stroke-width: 1.25; }
.failure { border-left: 4px solid var(--failed); padding: 4px 0 4px 12px; margin: 10px 0; }
.failure.blocked { border-left-color: var(--blocked); }
.failure p { margin: 2px 0; overflow-wrap: anywhere; }
/* database text of any length: keep line breaks, wrap anywhere, scroll past a few lines */
.long { white-space: pre-line; overflow-wrap: anywhere; max-height: 9em; overflow: auto; }
.proof { list-style: none; margin: 0; padding: 0; }
.proof li { padding: 4px 0; overflow-wrap: anywhere; }
.verdict-box { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
footer { color: var(--muted); font-size: 12px; text-align: center; overflow-wrap: anywhere; }
@media print { html, body { background: #fff; } section, header.report { break-inside: avoid; } }
`;
