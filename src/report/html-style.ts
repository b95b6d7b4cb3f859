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
  --expected: #0a6c74; --expected-bg: #ddf4f2;
  --amber: #9a6700;
}
* { box-sizing: border-box; }
html { background: var(--soft); }
body {
  margin: 0 auto; max-width: 1180px; padding: 24px 24px 48px; color: var(--fg); background: var(--soft);
  font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
}
h1 { font-size: 24px; margin: 0; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 0 0 12px; }
h2 small { font-size: 14px; font-weight: 400; color: var(--muted); margin-left: 6px; overflow-wrap: anywhere; }
h3 { font-size: 14px; margin: 16px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section, header.report, nav#contents {
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
.st-expected { color: var(--expected); background: var(--expected-bg); }
.pill.tag { font-weight: 500; }
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
.cell a { color: inherit; text-decoration: none; display: flex; flex-direction: column; gap: 1px; min-width: 0; }
.cell a:hover .nm, .cell a:focus .nm { text-decoration: underline; }
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
.failure.expected { border-left-color: var(--expected); }
.failure p { margin: 2px 0; overflow-wrap: anywhere; }
/* database text of any length: keep line breaks, wrap anywhere, scroll past a few lines */
.long { white-space: pre-line; overflow-wrap: anywhere; max-height: 9em; overflow: auto; }
.proof { list-style: none; margin: 0; padding: 0; }
.proof li { padding: 4px 0; overflow-wrap: anywhere; }
.verdict-box { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
/* the summary box: its border says the verdict */
.summary { border-width: 2px; border-left-width: 8px; }
.summary.tone-go { border-color: var(--applied); background: #f6fdf8; }
.summary.tone-no-go { border-color: #d4a72c; background: #fffdf2; }
.summary.tone-fail { border-color: var(--failed); background: #fff8f7; }
.summary .badges { margin: 0 0 4px; }
.summary-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 0 32px; }
.summary-grid > div { min-width: 0; }
.summary p { margin: 4px 0; }
.failures-list { margin: 4px 0; padding-left: 18px; }
.proven { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 4px 32px; }
.proof-group { min-width: 0; }
.proof-group h4 { margin: 6px 0 2px; font-size: 13.5px; }
.proof-group .proof li { padding: 2px 0; }
a { color: var(--passed); }
nav#contents ol { margin: 0; padding-left: 22px; columns: 2 260px; column-gap: 32px; }
nav#contents li { break-inside: avoid; overflow-wrap: anywhere; padding: 1px 0; }
/* identity */
table.identity { table-layout: fixed; }
table.identity th:first-child { width: 14em; }
table.identity th[scope=row] { font-size: 13px; font-weight: 400; color: var(--muted); background: none; white-space: normal; }
table.identity td { overflow-wrap: anywhere; }
/* durations */
figure.durations { margin: 0; }
.dchart { display: block; max-width: 100%; height: auto; }
.dchart text { font-size: 11px; fill: var(--fg); }
.dchart .group { font-weight: 600; font-size: 11.5px; }
.dchart .tick { fill: var(--muted); font-size: 10px; }
.dchart .grid { stroke: var(--line); stroke-width: 1; }
.dchart .bar { background: none; }
.dchart .bar rect { fill: currentColor; }
figure.durations figcaption { margin: 6px 0; font-size: 12.5px; }
/* a stage: its checks, then a card per tier */
ul.checks { list-style: none; margin: 0; padding: 0; }
ul.checks li { padding: 3px 0; overflow-wrap: anywhere; }
article.tier {
  color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-left: 4px solid var(--skipped);
  border-radius: 6px; padding: 10px 14px; margin: 10px 0; min-width: 0;
}
.tier.st-applied { border-left-color: var(--applied); }
.tier.st-passed { border-left-color: var(--passed); }
.tier.st-blocked { border-left-color: var(--blocked); }
.tier.st-failed { border-left-color: var(--failed); }
.tier.st-reverted { border-left-color: var(--reverted); }
.tier.st-expected { border-left-color: var(--expected); }
.tier-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 12px; }
.tier-head h4 { margin: 0; font-size: 15px; flex: 1 1 20em; min-width: 0; overflow-wrap: anywhere; max-height: 6em; overflow: auto; }
.tier-head .tid { color: var(--muted); font-weight: 600; margin-right: 4px; }
.tier-meta { color: var(--muted); margin: 2px 0 6px; overflow-wrap: anywhere; }
.outcome { color: var(--expected); background: var(--expected-bg); border-radius: 4px; padding: 4px 10px; margin: 6px 0; overflow-wrap: anywhere; }
.reason { color: var(--muted); margin: 4px 0; }
.tier .facts { grid-template-columns: max-content minmax(0, 1fr); margin-top: 6px; }
.tier .facts dd { max-height: none; overflow: visible; min-width: 0; }
ul.plain { list-style: none; margin: 0; padding: 0; }
ul.plain li { overflow-wrap: anywhere; }
ul.plain.inline li { display: inline-block; margin-right: 14px; }
ul.names { max-height: 12em; }
table.checked { table-layout: fixed; min-width: 560px; }
table.checked td, table.checked th { padding: 3px 10px; overflow-wrap: anywhere; }
table.checked th:nth-child(1) { width: 26%; } table.checked th:nth-child(2) { width: 13%; }
table.checked th:nth-child(3) { width: 33%; } table.checked th:nth-child(4) { width: 18%; } table.checked th:nth-child(5) { width: 10%; }
table.checked td.nw { white-space: normal; }
tr.missed td { background: var(--failed-bg); }
details.expectations { margin-top: 2px; }
pre.excerpt .ln, pre.sql .l::before { color: var(--muted); user-select: none; }
pre.excerpt .ln { margin-right: 1em; }
pre.excerpt .ln::after { content: " |"; }
details.sql { margin: 8px 0 2px; }
details.sql summary { white-space: normal; overflow-wrap: anywhere; }
pre.sql { white-space: pre; overflow-wrap: normal; overflow: auto; max-height: 36em; }
pre.sql code { counter-reset: l; background: none; padding: 0; border-radius: 0; overflow-wrap: normal; }
pre.sql .l::before { counter-increment: l; content: counter(l); display: inline-block; width: 3em; margin-right: 1.2em; text-align: right; }
pre.sql .l.hit { background: var(--failed-bg); }
.tier.st-expected pre.sql .l.hit { background: var(--expected-bg); }
.sql-missing { font-size: 12.5px; overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 12px; text-align: center; overflow-wrap: anywhere; }
@media print { html, body { background: #fff; } section, header.report, nav#contents { break-inside: avoid; } }
`;
