#!/usr/bin/env node
// Runs the compiled CLI; `npm ci` builds it (the `prepare` script).
import { main } from '../dist/src/cli/main.js';
main(process.argv);
