/** report/: pure functions from an `Evidence` value to Markdown, HTML and terminal lines (JSON: src/evidence/). */
export { renderMarkdown } from './render-markdown.js';
export { renderHtml } from './render-html.js';
export { snapshotLine } from './identity.js';
export { renderVerdictLine, renderTierLine, renderTierStart } from './render-terminal.js';
export { renderJson, parseEvidence } from '../evidence/evidence-json.js';
export { EvidenceError, type EvidenceIssue } from '../evidence/evidence-error.js';
