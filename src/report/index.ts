/** report/: pure functions from an `Evidence` value to Markdown, HTML, JSON and terminal lines. */
export { renderMarkdown } from './render-markdown.js';
export { renderHtml } from './render-html.js';
export { renderJson, parseEvidence } from './render-json.js';
export { renderVerdictLine, renderTierLine } from './render-terminal.js';
export { EvidenceSchema } from './evidence-schema.js';
export { evidenceJsonSchemaText, EVIDENCE_JSON_SCHEMA_PATH } from './evidence-json-schema.js';
export { EvidenceError, type EvidenceIssue } from './evidence-error.js';
